"""``carbonledger db``: create, upgrade, downgrade and inspect the ledger schema; factors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carbonledger.cli._ledger_common import LEDGER_URL_HELP, ledger_errors, resolve_ledger_url

db_app = typer.Typer(help="The ledger database: schema migrations and emission factors.")

if TYPE_CHECKING:
    from sqlalchemy import Engine

LedgerUrl = Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)]


@contextmanager
def _current_ledger(ledger_url: str | None) -> Iterator[Engine]:
    """The ledger of ``--ledger-url`` (else the settings) at the newest schema; errors: one line."""
    from carbonledger.ledger import create_ledger_engine, migrate

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        engine = create_ledger_engine(url)
        migrate.require_current(engine)
        yield engine


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group."""
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_cmd(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    ledger_url: LedgerUrl = None,
    seed: Annotated[
        bool, typer.Option("--seed/--no-seed", help="Load the shipped emission factors.")
    ] = True,
) -> None:
    """Create or upgrade the ledger schema, then seed the shipped emission factors."""
    from carbonledger.ledger import create_ledger_engine, migrate, redact

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        engine = create_ledger_engine(url)
        migrate.upgrade(engine, revision)
        typer.echo(f"ledger {redact(url)} at revision {migrate.current_revision(engine)}")
        if seed and revision == "head":
            _seed(engine)


@db_app.command("downgrade")
def downgrade_cmd(
    revision: Annotated[str, typer.Argument(help="Target revision, -1, or base.")] = "-1",
    ledger_url: LedgerUrl = None,
) -> None:
    """Downgrade the ledger schema (``base`` drops every ledger table)."""
    from carbonledger.ledger import create_ledger_engine, migrate, redact

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        engine = create_ledger_engine(url)
        migrate.downgrade(engine, revision)
        current = migrate.current_revision(engine) or "base (empty)"
        typer.echo(f"ledger {redact(url)} at revision {current}")


@db_app.command("current")
def current_cmd(ledger_url: LedgerUrl = None) -> None:
    """Print the ledger's schema revision and whether it is the newest."""
    from carbonledger.ledger import create_ledger_engine, migrate

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        engine = create_ledger_engine(url)
        current, head = migrate.current_revision(engine), migrate.head_revision()
        state = "up to date" if current == head else f"behind {head}: run carbonledger db upgrade"
        typer.echo(f"{current or 'empty'} ({state})")


@db_app.command("seed-factors")
def seed_factors_cmd(ledger_url: LedgerUrl = None) -> None:
    """Load the shipped yearly and hourly emission factors (changed values: new versions)."""
    with _current_ledger(ledger_url) as engine:
        _seed(engine)


@db_app.command("add-factor")
def add_factor_cmd(
    zone: Annotated[str, typer.Option(help="Zone, e.g. DE or US-CAL-CISO.")],
    year: Annotated[int, typer.Option(help="Year the factor applies to.")],
    intensity: Annotated[float, typer.Option(help="gCO2e per kWh.")],
    source: Annotated[str, typer.Option(help="Where the figure comes from.")],
    basis: Annotated[str, typer.Option(help="location (grid) or market (contractual).")] = (
        "location"
    ),
    instrument: Annotated[
        str | None, typer.Option(help="Contract behind a market factor (PPA, tariff).")
    ] = None,
    licence: Annotated[str | None, typer.Option(help="Licence of the data.")] = None,
    ledger_url: LedgerUrl = None,
) -> None:
    """Add an emission factor version; totals of that zone and year are restated."""
    from carbonledger.ledger import add_emission_factor

    with _current_ledger(ledger_url) as engine:
        with engine.begin() as conn:
            version = add_emission_factor(
                conn,
                zone=zone,
                year=year,
                basis=basis,
                intensity_g_per_kwh=intensity,
                source=source,
                instrument=instrument,
                licence=licence,
            )
        if version is None:
            typer.echo(f"{basis} factor {zone} {year} unchanged")
        else:
            typer.echo(f"{basis} factor {zone} {year}: version {version} ({intensity:g} g/kWh)")


def _seed(engine: object) -> None:
    from carbonledger.ledger import seed_emission_factors, shipped_factors
    from carbonledger.ledger.hourly_factors import seed_hourly_factors

    with engine.begin() as conn:  # type: ignore[attr-defined]
        result = seed_emission_factors(conn, factors=shipped_factors())
        hourly = seed_hourly_factors(conn)
    typer.echo(
        f"emission factors: {result.added} added, {result.restated} restated, "
        f"{result.unchanged} unchanged"
    )
    typer.echo(
        f"hourly emission factors: {hourly.added} added, {hourly.restated} restated, "
        f"{hourly.unchanged} unchanged"
    )


@db_app.command("import-factors")
def import_factors_cmd(
    file: Annotated[Path, typer.Argument(help="Electricity Maps portal CSV or plain CSV.")],
    source: Annotated[
        str | None, typer.Option(help="Name of the data set (default: import:FILE).")
    ] = None,
    licence: Annotated[str | None, typer.Option(help="Licence of the data.")] = None,
    ledger_url: LedgerUrl = None,
) -> None:
    """Load hourly (or finer) factors: changed values become new versions, bad rows refuse all."""
    from carbonledger.ledger.factor_import import import_factor_file

    with _current_ledger(ledger_url) as engine:
        with engine.begin() as conn:
            result = import_factor_file(conn, path=file, source=source, licence=licence)
    c = result.counts
    typer.echo(
        f"{file.name} ({result.layout}): {result.rows} rows, {result.hours} hours: "
        f"{c.added} added, {c.restated} restated, {c.unchanged} unchanged"
    )


@db_app.command("grant-team")
def grant_team_cmd(
    role: Annotated[str, typer.Argument(help="Existing PostgreSQL role to restrict.")],
    team: Annotated[str, typer.Option("--team", help="Team whose rows the role may read.")],
    ledger_url: LedgerUrl = None,
) -> None:
    """Let a PostgreSQL role read only one team's rows (row-level security; repeat for more)."""
    from carbonledger.ledger.access import grant_team

    with _current_ledger(ledger_url) as engine:
        with engine.begin() as conn:
            added = grant_team(conn, role=role, team=team)
    state = "granted" if added else "already granted"
    typer.echo(f"role {role}: team {team} {state}; it reads only the rows of its teams")


@db_app.command("partitions")
def partitions_cmd(
    detach_before: Annotated[
        str | None,
        typer.Option(
            "--detach-before",
            help="Detach the monthly partitions before this month (YYYY-MM); they stay as "
            "plain tables to archive or drop.",
        ),
    ] = None,
    ledger_url: LedgerUrl = None,
) -> None:
    """List the monthly partitions of the time tables (PostgreSQL), or detach old ones."""
    from carbonledger.ledger.partitions import detach_partitions, list_partitions

    with _current_ledger(ledger_url) as engine:
        if engine.dialect.name != "postgresql":
            typer.echo("SQLite keeps one table per kind of record: no partitions to manage")
            return
        with engine.begin() as conn:
            if detach_before is not None:
                for name in detach_partitions(conn, before=detach_before):
                    typer.echo(f"detached {name}")
                typer.echo(
                    "detached tables keep their rows; their windows leave the views (the "
                    "rollups keep their figures until a full rebuild)"
                )
                return
            for part in list_partitions(conn):
                month = part.month or "default"
                typer.echo(
                    f"{part.name:<40} {month:<8} ~{part.rows_estimate:>12,} rows "
                    f"{part.total_bytes / 1e6:>10.1f} MB"
                )
