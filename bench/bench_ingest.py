"""Ingest at scale: the shared S&P 500 file (488 symbols, 2.7M rows) into a fresh SQLite database.

Figures: the cold ingest + Great Expectations validation of the whole file, per stage (read, validate,
store, quarantine) with rows/s, wall time and peak memory; a rerun of the same file (idempotent: stores
nothing); and an incremental run adding one session for all 488 symbols from a small extra file.
Targets on the 2-core machine: cold < 60 s, incremental < 5 s.

The GX import (seconds on a cold interpreter) is reported on its own and counted in the cold wall time.
Prefect is imported before the clock starts (``stockflow ingest`` runs the flow, so it is always loaded
by then; stockflow's logger asks it for the run context) and its import time is reported on its own.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

SHARED = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "sp500_cc0"
    / "sp500_2018_members_1962-2017_daily.csv.gz"
)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def _rate(rows: int, seconds: float) -> int:
    return int(rows / seconds) if seconds > 0 else 0


def _next_day_file(engine: Any, path: Path) -> int:
    """One new session (the next XNYS session after the last stored one) for every stored symbol."""
    from stockflow.calendar import sessions
    from stockflow.store.bars import load_bars

    last = load_bars(engine).group_by("symbol").agg(pl.col("session").last(), pl.col("close").last())
    arr = sessions("XNYS")
    nxt = arr[arr > last["session"].max()][0].astype(dt.date)
    rows = last.select(
        "symbol",
        pl.lit(nxt.isoformat()).alias("date"),
        (pl.col("close") * 1.002).round(4).alias("open"),
        (pl.col("close") * 1.015).round(4).alias("high"),
        (pl.col("close") * 0.990).round(4).alias("low"),
        (pl.col("close") * 1.005).round(4).alias("close"),
        pl.lit(1_000_000).alias("volume"),
    )
    rows.write_csv(path)
    return rows.height


def run() -> dict[str, Any]:
    """Cold, rerun and incremental ingest of the shared file; figures as a dict."""
    if not SHARED.exists():
        raise FileNotFoundError(f"shared dataset not found at {SHARED}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from stockflow.config import load_settings
    from stockflow.db import make_engine, upgrade
    from stockflow.ingest import begin_ingest, fetch_stage, run_ingest, store_stage, validate_stage

    settings = load_settings(
        data_dir=tmp / "data", reports_dir=tmp / "reports", database_url=f"sqlite:///{tmp / 'bench.db'}"
    )
    engine = make_engine(settings.db_url)
    upgrade(engine)
    out: dict[str, Any] = {"rows_in_file": None, "machine_cpus": os.cpu_count()}
    t = time.perf_counter()
    import prefect  # noqa: F401

    from stockflow.logs import get_logger

    get_logger()
    out["prefect_import_s"] = round(time.perf_counter() - t, 2)

    t_cold = time.perf_counter()
    t = time.perf_counter()
    import great_expectations  # noqa: F401  (a cold process pays this once)

    out["gx_import_s"] = round(time.perf_counter() - t, 2)
    run_id = begin_ingest(settings, engine, source="files", path=str(SHARED))
    t = time.perf_counter()
    batch = fetch_stage(settings, engine, run_id, source="files", path=str(SHARED))
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    outcome = validate_stage(settings, batch)
    validate_s = time.perf_counter() - t
    report = store_stage(settings, engine, batch, outcome)
    cold_s = time.perf_counter() - t_cold
    tm = report.timings
    n = batch.rows_fetched
    out.update(
        rows_in_file=n,
        symbols=len(report.symbols_ok),
        cold_wall_s=round(cold_s, 2),
        cold_wall_without_gx_import_s=round(cold_s - out["gx_import_s"], 2),
        cold_target_s=60,
        read_s=round(read_s, 2),
        read_rows_per_s=_rate(n, read_s),
        validate_s=round(validate_s, 2),
        validate_rows_per_s=_rate(n, validate_s),
        store_bars_s=tm["store_bars_s"],
        store_rows_per_s=_rate(report.rows_stored, tm["store_bars_s"]),
        quarantine_s=tm["store_quarantine_s"],
        quarantine_rows=report.rows_quarantined,
        quarantine_rows_per_s=_rate(report.rows_quarantined, tm["store_quarantine_s"]),
        commit_s=tm["store_commit_s"],
        rows_stored=report.rows_stored,
        quarantined_by_rule=report.quarantined_by_rule,
        warnings_by_rule=report.warnings_by_rule,
        peak_rss_mb_after_cold=_rss_mb(),
        db_size_mb=round(sum(p.stat().st_size for p in tmp.glob("bench.db*")) / 1e6, 1),
    )

    t = time.perf_counter()
    rerun = run_ingest(settings, engine, source="files", path=str(SHARED))
    out["rerun_same_file_s"] = round(time.perf_counter() - t, 2)
    out["rerun_rows_stored"] = rerun.rows_stored

    extra = tmp / "next_session.csv"
    n_extra = _next_day_file(engine, extra)
    t = time.perf_counter()
    inc = run_ingest(settings, engine, source="files", path=str(extra))
    inc_s = time.perf_counter() - t
    engine.dispose()
    keep = os.environ.get("BENCH_INGEST_KEEP") == "1"
    if not keep:  # the database is ~0.9 GB
        shutil.rmtree(tmp, ignore_errors=True)
    out.update(
        incremental_rows=n_extra,
        incremental_wall_s=round(inc_s, 2),
        incremental_target_s=5,
        incremental_stages_s=inc.timings,
        incremental_rows_stored=inc.rows_stored,
        peak_rss_mb=_rss_mb(),
        kept_dir=str(tmp) if keep else "removed (BENCH_INGEST_KEEP=1 keeps the database and Data Docs)",
    )
    return out
