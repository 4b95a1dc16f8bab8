"""Hot statements on the driver's cursor: the webhook path's four statements (the state
read, the claim, the conversation's upsert, the reply) run hundreds of times a second.

`Connection.execute` spends about 280,000 instructions per statement on its own work
(the compiled cache's key, parameter processing, the execution context, the result's
set-up), three times what SQLite needs to run the statement (bench/PROFILE.md, fourth
round). A `Statement` is compiled once per dialect and set of parameter names, its
parameters and results go through the same type processors SQLAlchemy would apply,
and it runs on the DBAPI cursor of a SQLAlchemy connection, keeping what the engine's
events give every statement: `before_cursor_execute`/`after_cursor_execute` (the
watchdog's arming, engine.py) and SQLAlchemy's error handling (`handle_error`, the
translation into `DatabaseUnavailable`, disconnect detection and invalidation).

Use it only inside a transaction (`Database.transaction`) or on an autocommit reading
connection (`Database.run_read`): it never begins one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement

_Processor = Callable[[Any], Any] | None


class Statement:
    """A Core statement run on the driver's cursor; rows come back as tuples."""

    def __init__(self, stmt: ClauseElement):
        self.stmt = stmt
        self._plans: dict[tuple, _Plan] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple]:
        """Run it with `params`; return every row it returns."""
        plan = self._plans.get((conn.dialect.name, *params))
        if plan is None:
            plan = self._plans.setdefault((conn.dialect.name, *params),
                                          _Plan(self.stmt, conn.dialect, params))
        return plan.run(conn, params)

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple | None:
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return row[0] if row else None


class _Plan:
    """The statement compiled for one dialect and one set of parameter names."""

    def __init__(self, stmt: ClauseElement, dialect, params: Mapping[str, Any]):
        compiled = stmt.compile(dialect=dialect, column_keys=list(params))
        self.sql = str(compiled)
        # Column defaults computed in Python (e.g. `default=utcnow`) for columns left out.
        self.defaults = [(column.key, column.default)
                         for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        if compiled.escaped_bind_names:
            raise ValueError("a parameter name that needs escaping: use Connection.execute")
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for name, bind in compiled.binds.items()}
        self.names: Sequence[str] = compiled.positiontup or list(compiled.binds)
        self.processors = [(name, processors.get(name)) for name in self.names]
        self.positional = bool(compiled.positiontup) or dialect.positional
        # Values written into the statement itself (`.values(status=...)`).
        given = {*params, *(key for key, _ in self.defaults)}
        self.fixed = {name: bind.effective_value for name, bind in compiled.binds.items()
                      if name not in given}
        self.results: list[_Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(stmt, "exported_columns", ())]
        self.any_result = any(self.results)

    def parameters(self, params: Mapping[str, Any]):
        values = {**self.fixed, **params} if self.fixed else params
        if self.defaults:
            values = {**values, **{key: default.arg(None) if default.is_callable
                                   else default.arg for key, default in self.defaults}}
        if self.positional:
            return tuple(p(values[n]) if p else values[n] for n, p in self.processors)
        return {n: p(values[n]) if p else values[n] for n, p in self.processors}

    def run(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple]:
        sql, args = self.sql, self.parameters(params)
        cursor = conn.connection.dbapi_connection.cursor()
        events = conn._has_events or conn.engine._has_events
        try:
            if events:
                for listener in conn.dispatch.before_cursor_execute:
                    sql, args = listener(conn, cursor, sql, args, None, False)
            cursor.execute(sql, args)
            rows = cursor.fetchall() if cursor.description else []
            if events:
                conn.dispatch.after_cursor_execute(conn, cursor, sql, args, None, False)
        except BaseException as exc:  # noqa: BLE001 - SQLAlchemy translates and re-raises
            conn._handle_dbapi_exception(exc, sql, args, cursor, None)
            raise
        finally:
            cursor.close()
        if self.any_result:
            results = self.results
            rows = [tuple(p(v) if p else v for p, v in zip(results, row, strict=True))
                    for row in rows]
        return rows
