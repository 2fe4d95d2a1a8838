"""Alembic environment of the carbonledger ledger.

Run from code (``carbonledger db upgrade``), the engine arrives in ``config.attributes``;
run as ``alembic upgrade head``, the URL comes from ``CARBONLEDGER_LEDGER_URL``.
"""

from __future__ import annotations

from alembic import context

from carbonledger.ledger.engine import create_ledger_engine
from carbonledger.ledger.models import Base
from carbonledger.ledger.partitions import include_object

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    from carbonledger.ledger.engine import ledger_url

    context.configure(
        url=ledger_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = create_ledger_engine()
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                render_as_batch=connection.dialect.name == "sqlite",
                include_object=include_object,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
