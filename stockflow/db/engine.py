"""Engines and transactions for SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from stockflow.errors import ConfigError, StoreError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run during an ingest; busy_timeout waits instead of failing on a short lock;
    # foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@dataclass
class _StoreFile:
    """The SQLite file an engine writes to and its identity (device, inode) when first opened."""

    path: Path
    identity: tuple[int, int] | None = None

    def current(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def check(self) -> None:
        """Raise :class:`StoreError` when the file is gone or is not the one first opened."""
        now = self.current()
        if self.identity is None:
            self.identity = now
            return
        if now == self.identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        raise StoreError(
            f"the SQLite store {self.path} was {what} while this process used it; nothing more was "
            "written. Restore the file (or the backup it replaced), then run again: orders at a real "
            "broker are reconciled from the broker on the next run"
        )


_STORES: weakref.WeakKeyDictionary[Engine, _StoreFile] = weakref.WeakKeyDictionary()


def _watch_store_file(engine: Engine, path: Path) -> None:
    store = _StoreFile(path)
    _STORES[engine] = store

    def on_connect(_dbapi_conn: Any, _record: Any) -> None:
        store.check()  # a new connection to a deleted store would silently create an empty one

    def before_commit(_conn: Any) -> None:
        store.check()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "commit", before_commit)
    # A disposed engine is done with its file: the end-of-command check no longer looks at it (it stayed
    # registered until garbage collection, and a later command in the process reported that file).
    event.listen(engine, "engine_disposed", lambda e: _STORES.pop(e, None))


def check_store_identities() -> None:
    """Check every SQLite store this process opened is still the same file (end of a command)."""
    for store in list(_STORES.values()):
        store.check()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; creates the SQLite file's directory when needed. A SQLite file
    deleted or replaced while the engine uses it makes the next commit fail with :class:`StoreError`."""
    try:
        u = make_url(url)
    except Exception as err:
        raise ConfigError(
            f"database_url {url!r} is not a database URL ({err}); use e.g. sqlite:///path/stockflow.db "
            "or postgresql://user@host:5432/db"
        ) from None
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db.startswith("file:"):  # a URI filename (uri=true), e.g. file:/path?mode=ro
            db = db.removeprefix("file:").split("?", 1)[0]
        elif db and db != ":memory:":
            try:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"cannot create the directory of the SQLite store {db}: {err}") from None
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if db and db != ":memory:":
            _watch_store_file(engine, Path(db).resolve())
        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    try:
        return create_engine(u, pool_pre_ping=True)
    except Exception as err:  # unknown dialect or driver
        raise ConfigError(
            f"database_url {u.render_as_string(hide_password=True)!r} cannot be used ({err}); "
            "use sqlite:///path or postgresql://user@host:5432/db"
        ) from None


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """A cached engine per URL (one pool per process)."""
    return make_engine(url)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back completely on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"
