"""Ingest: fetch -> validate -> store (bars and quarantine in one transaction), as plain functions.

``run_ingest`` chains the stages; the Prefect flow ``flows.ingest.ingest_flow`` calls the same stages as
tasks. The order is deliberate: a batch is validated *before* anything is written, and its bars, the
quarantine flags and rows, the validation summary and the run's final state are written in one
transaction. A crash at any point leaves either the whole batch or nothing, never unvalidated bars that
downstream stages would read.

Incremental and idempotent: only bars newer than the last stored session of each symbol are kept
(remote sources are only asked for those), and inserts skip what is already stored.

Modules: :mod:`~stockflow.ingest.stages` (open the run, fetch, validate), :mod:`~stockflow.ingest.persist`
(the one write transaction), :mod:`~stockflow.ingest.quarantine` (records of refused rows),
:mod:`~stockflow.ingest.report` (the batch and the report).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine

from stockflow.config import Settings
from stockflow.ingest.persist import store_stage
from stockflow.ingest.report import NOT_STORED_RULES, Batch, IngestReport
from stockflow.ingest.stages import (
    begin_ingest,
    fail_ingest,
    fetch_stage,
    resolve_symbols,
    resolve_window,
    validate_stage,
)
from stockflow.logs import get_logger


def run_ingest(
    settings: Settings,
    engine: Engine,
    *,
    source: str | None = None,
    symbols: list[str] | None = None,
    path: str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    flow_run_id: str | None = None,
    http_session: Any = None,
    since: dt.date | None = None,
    replace: bool = False,
) -> IngestReport:
    """Fetch, validate and store one batch (see module docstring). Raises :class:`SourceError` when
    nothing could be fetched and :class:`ValidationFailedError` when too many rows break error rules;
    the ingest run is recorded as failed in both cases and no bar is stored."""
    source = source or settings.data.source
    start_d, end_d, path = resolve_window(settings, start, end, path)
    log = get_logger()
    run_id = begin_ingest(
        settings,
        engine,
        source=source,
        symbols=symbols,
        path=path,
        start=start_d,
        end=end_d,
        flow_run_id=flow_run_id,
    )
    t0 = time.perf_counter()
    try:
        batch = fetch_stage(
            settings,
            engine,
            run_id,
            source=source,
            symbols=symbols,
            path=path,
            start=start_d,
            end=end_d,
            http_session=http_session,
            since=since,
            replace=replace,
        )
        outcome = validate_stage(settings, batch)
        report = store_stage(settings, engine, batch, outcome)
    except BaseException as err:
        fail_ingest(engine, run_id, err)
        raise
    report = dataclasses.replace(
        report, timings={**report.timings, "total_s": round(time.perf_counter() - t0, 3)}
    )
    for line in report.lines():
        log.info(line)
    return report


__all__ = [
    "NOT_STORED_RULES",
    "Batch",
    "IngestReport",
    "begin_ingest",
    "fail_ingest",
    "fetch_stage",
    "resolve_symbols",
    "resolve_window",
    "run_ingest",
    "store_stage",
    "validate_stage",
]
