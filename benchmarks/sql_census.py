"""Counting what an engine sends to Postgres: statements by shape, transactions, checkouts.

Hooks on the engine (``before_cursor_execute``; ``begin``, ``commit``, ``rollback``) and on
its pool (``checkout``) see every statement of every session the app opens. The harness sets
``phase`` before each call it makes, one call at a time, so each count lands in its phase.

What the hooks cannot see, counted from what is known of the driver: asyncpg sends BEGIN and
COMMIT (or ROLLBACK) as round trips of their own, for a transaction that ran a statement;
and an engine with ``pool_pre_ping`` pings at every checkout of a pooled connection, which
SQLAlchemy's asyncpg dialect does as BEGIN, ``;``, ROLLBACK: three round trips, one more
(rolled-back) transaction. A connection in autocommit has SQLAlchemy's begin and end
events but no BEGIN on the wire: its statements count, as no transaction.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

AUTOCOMMIT = "AUTOCOMMIT"
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"\$\d+(::[A-Z_\[\]]+)?|%\([^)]*\)s")
_PLACEHOLDER_RUN = re.compile(r"\?(, \?)+")
_SELECT_LIST = re.compile(r"^SELECT (.{60,}?) FROM ")
_INSERT_LISTS = re.compile(r"^INSERT INTO (\S+) \(.*?\) VALUES \(.*?\)")


def statement_shape(statement: str) -> str:
    """The statement with values and long column lists folded, so equal shapes count as one."""
    shape = _PLACEHOLDER_RUN.sub("?…", _PLACEHOLDER.sub("?", _SPACE.sub(" ", statement).strip()))
    shape = _INSERT_LISTS.sub(r"INSERT INTO \1 (…) VALUES (…)", shape)
    return _SELECT_LIST.sub("SELECT … FROM ", shape)


@dataclass
class TransactionTally:
    """Transactions that sent at least one statement, and those that sent none."""

    committed: int = 0
    rolled_back: int = 0
    empty: int = 0

    @property
    def with_statements(self) -> int:
        return self.committed + self.rolled_back


@dataclass
class SqlCensus:
    phase: str = ""
    statements: Counter[tuple[str, str]] = field(default_factory=Counter)
    transactions: dict[str, TransactionTally] = field(default_factory=dict)
    checkouts: Counter[str] = field(default_factory=Counter)
    pre_ping: bool = False
    _open: dict[int, int] = field(default_factory=dict)

    def attach(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        self.pre_ping = bool(getattr(sync.pool, "_pre_ping", False))
        event.listen(sync, "before_cursor_execute", self._on_statement)
        event.listen(sync, "begin", self._on_begin)
        event.listen(sync, "commit", self._on_commit)
        event.listen(sync, "rollback", self._on_rollback)
        event.listen(sync.pool, "checkout", self._on_checkout)

    def detach(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.remove(sync, "before_cursor_execute", self._on_statement)
        event.remove(sync, "begin", self._on_begin)
        event.remove(sync, "commit", self._on_commit)
        event.remove(sync, "rollback", self._on_rollback)
        event.remove(sync.pool, "checkout", self._on_checkout)

    def statements_in(self, phase: str | None = None) -> int:
        return sum(n for (where, _), n in self.statements.items() if phase in (None, where))

    def tally(self, phase: str | None = None) -> TransactionTally:
        total = TransactionTally()
        for where, tally in self.transactions.items():
            if phase in (None, where):
                total.committed += tally.committed
                total.rolled_back += tally.rolled_back
                total.empty += tally.empty
        return total

    def pings(self, phase: str | None = None) -> int:
        """Pre-ping transactions: one per checkout when the pool pings."""
        if not self.pre_ping:
            return 0
        return sum(n for where, n in self.checkouts.items() if phase in (None, where))

    def round_trips(self, phase: str | None = None) -> int:
        """Statements, BEGIN and COMMIT/ROLLBACK around them, and three per pre-ping."""
        tally = self.tally(phase)
        return self.statements_in(phase) + 2 * tally.with_statements + 3 * self.pings(phase)

    def shapes(self) -> list[tuple[str, str, int]]:
        """(phase, shape, count), in the order the statements were first seen."""
        return [(phase, shape, count) for (phase, shape), count in self.statements.items()]

    def _on_statement(self, connection: Connection, *args: Any) -> None:
        statement: str = args[1]
        self.statements[(self.phase, statement_shape(statement))] += 1
        if id(connection) in self._open:
            self._open[id(connection)] += 1

    def _on_begin(self, connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") == AUTOCOMMIT:
            return  # the driver sends no BEGIN: the statements run on their own
        self._open[id(connection)] = 0

    def _on_commit(self, connection: Connection) -> None:
        self._end(connection, committed=True)

    def _on_rollback(self, connection: Connection) -> None:
        self._end(connection, committed=False)

    def _end(self, connection: Connection, *, committed: bool) -> None:
        sent = self._open.pop(id(connection), None)
        if sent is None:
            return
        tally = self.transactions.setdefault(self.phase, TransactionTally())
        if sent == 0:
            tally.empty += 1
        elif committed:
            tally.committed += 1
        else:
            tally.rolled_back += 1

    def _on_checkout(self, *_args: Any) -> None:
        self.checkouts[self.phase] += 1
