"""The ledger's table classes: SQLAlchemy Core tables written as typed classes, without the ORM.

The ledger is read and written with Core statements only (no session, no mapped instances),
so its tables need no ORM mapping: importing and configuring the ORM and 29 mapped classes
cost ~0.2 s of every CLI start (``carbonledger etl`` with nothing to load is ~1.5 s). A class
deriving from :class:`Base` declares its columns as class attributes made by :func:`column`,
and becomes a :class:`~sqlalchemy.Table` on ``Base.metadata`` when it is defined. As with
declarative ``Mapped[...]`` annotations, a column is ``NOT NULL`` unless its annotation says
``| None`` (or it passes ``nullable=``). The class stands for its table in statements
(``select(Run)``, ``insert(Run)``), and ``Run.team`` is the table's column.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.sql.elements import ColumnClause

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The type of a table class's column attribute (``Run.team: Col[str]``). Not ``Column``: type
# checkers read ``Column`` on a class as unusable (SQLAlchemy 2.1 keeps that for its own typed
# column classes), while the object is the table's ``Column``, a ``ColumnClause``.
Col = ColumnClause

_UNSET: Any = object()
_NULLABLE = "carbonledger_nullable"  # the nullable= a column was given, until its table is built


def column(*args: Any, nullable: bool | None = _UNSET, **kwargs: Any) -> Column[Any]:
    """A column of a :class:`Base` table; its name is the attribute's, nullability the hint's."""
    col: Column[Any] = Column(*args, **kwargs)
    col.info[_NULLABLE] = nullable
    return col


class Base:
    """A ledger table: a class whose :func:`column` attributes become a Core table."""

    metadata: ClassVar[MetaData] = MetaData(naming_convention=NAMING_CONVENTION)
    __tablename__: ClassVar[str]
    __table__: ClassVar[Table]
    __table_args__: ClassVar[tuple[Any, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns = _columns(cls, copy=False)
        for mixin in cls.__mro__[1:]:  # a mixin's columns come after the class's own, copied
            if mixin is not object and not issubclass(mixin, Base):
                for col in _columns(mixin, copy=True):
                    setattr(cls, col.key, col)  # ``Table.col`` is this table's column
                    columns.append(col)
        cls.__table__ = Table(cls.__tablename__, cls.metadata, *columns, *cls.__table_args__)

    @classmethod
    def __clause_element__(cls) -> Table:
        """The class in a statement is its table (``select(Run)``, ``insert(Run)``)."""
        return cls.__table__


def _columns(owner: type, *, copy: bool) -> list[Column[Any]]:
    """The :func:`column` attributes ``owner`` defines, named and with their nullability."""
    hints = owner.__dict__.get("__annotations__", {})
    columns = []
    for key, value in list(vars(owner).items()):
        if not isinstance(value, Column):
            continue
        nullable = value.info.get(_NULLABLE, _UNSET)
        if nullable is _UNSET:  # like a declarative ``Mapped[...]`` annotation
            nullable = not value.primary_key and "None" in str(hints.get(key, ""))
        col = value._copy() if copy else value
        col.info.pop(_NULLABLE, None)
        col.name = col.key = key
        col.nullable = nullable
        columns.append(col)
    return columns
