"""A database-backed lock so that two runs can never trade at the same time.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated connection;
the server releases it if the process dies. SQLite: a lock row with a lease (``execution_locks``),
taken with one conditional UPDATE (or an INSERT) so that exactly one contender wins; a crashed holder's
lease expires. The holder is recorded in ``execution_locks`` on both backends, for the error message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.exc import IntegrityError

from stockflow.db.base import utcnow
from stockflow.db.engine import is_postgres, transaction
from stockflow.db.models_trading import ExecutionLock
from stockflow.errors import HaltError


class TradingLockedError(HaltError):
    """Another run holds the trading lock: this run must not trade."""


@dataclass
class RunLock:
    """A held lock; ``renew()`` extends the lease (SQLite) during long runs."""

    engine: Engine
    name: str
    holder: str
    lease: dt.timedelta
    _conn: Connection | None = None

    def renew(self) -> None:
        """Push the lease's expiry ``lease`` into the future."""
        with transaction(self.engine) as s:
            s.execute(
                update(ExecutionLock)
                .where(ExecutionLock.name == self.name, ExecutionLock.holder == self.holder)
                .values(expires_at=utcnow() + self.lease)
            )


def _pg_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"stockflow:{name}".encode()).digest()[:8], "big", signed=True)


def _holder_text(engine: Engine, name: str) -> str:
    with transaction(engine) as s:
        row = s.get(ExecutionLock, name)
        if row is None:
            return "another run"
        return f"{row.holder} (since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC)"


def _identity(holder: str) -> str:
    return f"{holder}@{socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(row_holder: str) -> bool:
    """True when the recorded holder was a process on this machine that no longer exists (it crashed:
    its lease need not run out before someone else may trade)."""
    _, _, where = row_holder.rpartition("@")
    host, _, pid_text = where.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _take_row(engine: Engine, name: str, holder: str, lease: dt.timedelta, *, force: bool) -> bool:
    now = utcnow()
    with transaction(engine) as s:
        cond = ExecutionLock.name == name
        if not force:
            cond = cond & ((ExecutionLock.expires_at < now) | (ExecutionLock.holder == holder))
        res = s.execute(
            update(ExecutionLock)
            .where(cond)
            .values(holder=holder, acquired_at=now, expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            return True
    try:
        with transaction(engine) as s:
            if s.get(ExecutionLock, name) is not None:
                return False
            s.add(ExecutionLock(name=name, holder=holder, acquired_at=now, expires_at=now + lease))
        return True
    except IntegrityError:
        return False


@contextmanager
def run_lock(
    engine: Engine, holder: str, *, name: str = "trading", lease_s: float = 1800.0
) -> Iterator[RunLock]:
    """Hold the trading lock for the duration of the block, or raise ``TradingLockedError`` at once.
    ``holder`` (e.g. the flow run id) is recorded with this machine and process id, so that a holder
    that crashed on this machine does not block the next run until its lease runs out."""
    lease = dt.timedelta(seconds=lease_s)
    holder = _identity(holder)
    if is_postgres(engine):
        conn = engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _pg_key(name)}).scalar()
            conn.commit()
            if not got:
                raise TradingLockedError(f"another run holds the trading lock: {_holder_text(engine, name)}")
            _take_row(engine, name, holder, lease, force=True)  # for the message of the next contender
            try:
                yield RunLock(engine, name, holder, lease, conn)
            finally:
                with transaction(engine) as s:
                    s.execute(
                        delete(ExecutionLock).where(
                            ExecutionLock.name == name, ExecutionLock.holder == holder
                        )
                    )
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _pg_key(name)})
                conn.commit()
        finally:
            conn.close()
        return
    if not _take_row(engine, name, holder, lease, force=False):
        with transaction(engine) as s:
            row = s.get(ExecutionLock, name)
            stale = row.holder if row is not None and _holder_is_dead(row.holder) else None
        taken = False
        if stale is not None:
            with transaction(engine) as s:  # only if it is still the dead holder's
                res = s.execute(
                    update(ExecutionLock)
                    .where(ExecutionLock.name == name, ExecutionLock.holder == stale)
                    .values(holder=holder, acquired_at=utcnow(), expires_at=utcnow() + lease)
                    .execution_options(synchronize_session=False)
                )
                taken = res.rowcount == 1  # type: ignore[attr-defined]
        if not taken:
            raise TradingLockedError(f"another run holds the trading lock: {_holder_text(engine, name)}")
    try:
        yield RunLock(engine, name, holder, lease)
    finally:
        with transaction(engine) as s:
            s.execute(delete(ExecutionLock).where(ExecutionLock.name == name, ExecutionLock.holder == holder))


def lock_holder(engine: Engine, name: str = "trading") -> str | None:
    """Who holds the lock row now (None when free or expired)."""
    with transaction(engine) as s:
        row = s.scalars(select(ExecutionLock).where(ExecutionLock.name == name)).one_or_none()
        if row is None or row.expires_at < utcnow():
            return None
        return row.holder
