"""Engines and transactions for SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run during an ingest; busy_timeout waits instead of failing on a short lock;
    # foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; creates the SQLite file's directory when needed."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, pool_pre_ping=True)


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
