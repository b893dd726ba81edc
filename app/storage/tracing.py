"""A span per statement (`db.system`, `db.statement`; never the parameters), around either
driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.trace import SpanKind, Tracer, get_current_span

from app.storage.port import Database, NothingChanged, Params, Query, Row, Transaction


class TracedDatabase:
    def __init__(self, inner: Database, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self.dialect = inner.dialect

    async def open(self) -> None:
        await self._inner.open()

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()

    @asynccontextmanager
    async def transaction(
        self, *, write: bool, background: bool = False
    ) -> AsyncIterator[Transaction]:
        async with self._inner.transaction(write=write, background=background) as tx:
            if background and not get_current_span().get_span_context().is_valid:
                yield tx  # background work of its own (a relay's poll): no trace per poll
            else:
                yield TracedTransaction(tx, self._tracer)


class TracedTransaction:
    def __init__(self, inner: Transaction, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self.dialect = inner.dialect

    def _span(self, query: Query) -> Any:
        sql = query.compiled(self.dialect).sql
        return self._tracer.start_as_current_span(
            sql.split(None, 1)[0],
            kind=SpanKind.CLIENT,
            attributes={"db.system": self.dialect, "db.statement": sql},
        )

    async def fetch_one(self, query: Query, params: Params | None = None) -> Row | None:
        with self._span(query):
            return await self._inner.fetch_one(query, params)

    async def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        with self._span(query):
            return await self._inner.fetch_all(query, params)

    async def execute(self, query: Query, params: Params | None = None) -> int:
        with self._span(query):
            return await self._inner.execute(query, params)

    async def defer(
        self,
        query: Query,
        params: Params | None = None,
        *,
        unchanged: type[NothingChanged] | None = None,
    ) -> None:
        with self._span(query):
            await self._inner.defer(query, params, unchanged=unchanged)
