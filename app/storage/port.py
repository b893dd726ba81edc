"""The port between commands and the database: statements SQLAlchemy compiled once, and the
`Database` and `Transaction` protocols the bus and the modules depend on. The drivers
(`app.storage.sqlite`, `app.storage.postgres`) implement it; nothing here runs SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from app.storage.schema import UTCDateTime

Row = Sequence[Any]
Params = Mapping[str, Any]

_DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(paramstyle="qmark"),
    "postgresql": postgresql.asyncpg.dialect(),  # type: ignore[no-untyped-call]
}


class DuplicateRow(Exception):
    """A unique constraint refused the row (a concurrent request got there first)."""


class NothingChanged(Exception):
    """A deferred statement that had to change a row changed none: the transaction rolled back.
    Callers pass a subclass of their own to `defer(..., unchanged=...)` and catch that."""

    def __init__(self, query: Query) -> None:
        super().__init__("a statement that had to change a row changed none")
        self.query = query


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    names: tuple[str, ...]
    """The statement's parameter names, in the order the driver takes them."""
    datetimes: tuple[int, ...]
    """Result columns that are UTC datetimes (parsed from text on SQLite)."""
    defaults: Mapping[str, Any]
    """Values SQLAlchemy put in the statement itself (such as SQLite's `OFFSET 0`)."""

    def values(self, params: Params | None) -> Params:
        """The statement's parameters: the caller's, over the statement's own defaults."""
        if self.defaults:
            return {**self.defaults, **(params or {})}
        assert params is not None, "the statement has parameters"
        return params


class Query:
    """A SQLAlchemy Core statement, compiled once per dialect on first use. A statement that
    differs by dialect is given as a function of the dialect's name.

    `point=True` marks a lookup of at most one row through a primary key or unique index: on
    SQLite, a read-only command runs it on the event loop's own connection (see `_SqliteRead`).
    """

    __slots__ = ("_compiled", "_statement", "point")

    def __init__(
        self, statement: ClauseElement | Callable[[str], ClauseElement], *, point: bool = False
    ) -> None:
        self._statement = statement
        self._compiled: dict[str, Compiled] = {}
        self.point = point

    def compiled(self, dialect: str) -> Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            statement = self._statement
            if not isinstance(statement, ClauseElement):
                statement = statement(dialect)
            found = self._compiled[dialect] = _compile(statement, dialect)
        return found


def _compile(statement: ClauseElement, dialect: str) -> Compiled:
    compiled = statement.compile(dialect=_DIALECTS[dialect])
    assert isinstance(compiled, SQLCompiler)
    columns = getattr(statement, "selected_columns", ())
    datetimes = tuple(i for i, c in enumerate(columns) if isinstance(c.type, UTCDateTime))
    names = tuple(compiled.positiontup or ())
    defaults = {
        name: bind.value
        for name, bind in compiled.binds.items()
        if name in names and not bind.required and bind.value is not None
    }
    return Compiled(compiled.string, names, datetimes, defaults)


class Transaction(Protocol):
    """What a command's handlers see of the database: statements in the command's transaction."""

    dialect: str

    async def fetch_one(self, query: Query, params: Params | None = None) -> Row | None: ...

    async def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]: ...

    async def execute(self, query: Query, params: Params | None = None) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def defer(
        self,
        query: Query,
        params: Params | None = None,
        *,
        unchanged: type[NothingChanged] | None = None,
    ) -> None:
        """Run a statement whose answer the command does not need at the latest at commit, in
        order with the others (on SQLite, in the same hop as the next statement or the COMMIT).
        Its errors, or `unchanged` (a NothingChanged class: the caller's own, so it knows the
        statement by its type) if it changed no row, surface then and roll the transaction
        back."""
        ...


class Database(Protocol):
    dialect: str

    def transaction(
        self, *, write: bool, background: bool = False
    ) -> AbstractAsyncContextManager[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises. A write
        transaction takes its connection (and on SQLite, the writer) at its first statement.
        `background`: work off the request path, possibly large (on SQLite it never runs on
        the event loop's own connection)."""
        ...

    async def open(self) -> None: ...

    async def ping(self) -> None:
        """Prove that the connections commands use reach the database now, and that it is the
        migrated one (readiness calls this); raise when they do not."""
        ...

    async def close(self) -> None: ...
