"""The store stage of the 2.7M-row ingest on both backends, the same frame: SQLite (executemany of a
prepared statement) beside PostgreSQL (COPY into a temporary table, then one INSERT ... ON CONFLICT DO
NOTHING). One transaction each, into fresh, migrated databases; then the same frame again (idempotent:
nothing inserted) to time the conflict check.

PostgreSQL: ``STOCKFLOW_BENCH_POSTGRES_URL`` (default the test server postgresql://postgres@127.0.0.1:5432/
test); a throw-away database is created and dropped. Reading and validating the file are the same on both
backends and are timed by ``bench_ingest``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import create_engine, text

from bench.scale_job import SHARED


def _bars() -> pl.DataFrame:
    return (
        pl.scan_csv(SHARED, try_parse_dates=True)
        .rename({"date": "session"})
        .select(
            pl.col("symbol").cast(pl.Utf8),
            pl.col("session").cast(pl.Date),
            *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
        )
        .unique(["symbol", "session"], keep="first", maintain_order=True)
        .collect()
    )


def _store(url: str, bars: pl.DataFrame) -> dict[str, Any]:
    from stockflow.db import make_engine, transaction, upgrade
    from stockflow.store.bars import store_bars

    engine = make_engine(url)
    upgrade(engine)
    out: dict[str, Any] = {}
    for label in ("cold", "again"):
        t = time.perf_counter()
        with transaction(engine) as s:
            n = store_bars(s, bars, source="bench", ingest_run_id=None)
        secs = time.perf_counter() - t
        out[f"{label}_s"] = round(secs, 2)
        out[f"{label}_rows_inserted"] = n
        out[f"{label}_rows_per_s"] = int(bars.height / secs)
    engine.dispose()
    return out


def run() -> dict[str, Any]:
    """SQLite and PostgreSQL store figures for the whole shared file."""
    bars = _bars()
    out: dict[str, Any] = {"rows": bars.height, "symbols": bars.get_column("symbol").n_unique()}
    tmp = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    try:
        out["sqlite_executemany"] = _store(f"sqlite:///{tmp / 'bench.db'}", bars)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    admin_url = os.environ.get("STOCKFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"stockflow_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:
        out["postgresql_copy"] = f"skipped: PostgreSQL not reachable ({type(err).__name__})"
        return out
    try:
        out["postgresql_copy"] = _store(admin_url.rsplit("/", 1)[0] + f"/{name}", bars)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return out
