"""The ``ingest`` flow: fetch -> validate (Great Expectations) -> store + quarantine, with artifacts.

Parameters (all optional, validated): ``source`` (sample/files/alpaca/yfinance; default the settings),
``symbols`` (default the configured universe; every symbol in the files for ``files``), ``path`` (for
``files``), ``start``/``end`` (sessions, inclusive), ``since`` (re-read stored sessions from that day on;
``full`` re-reads everything) and ``replace`` (take restated values; the old ones go to
``bar_revisions``). Publishes a markdown summary (key
``ingest-summary``) and a link to the run's Data Docs (key ``data-docs``). Fails loudly when nothing
could be fetched or when the quarantined share passes ``validation.max_failed_share``.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

import flows  # noqa: F401  (one line for expected errors, also when Prefect loads this file by path)
from stockflow.choices import SourceName
from stockflow.config import load_settings
from stockflow.crashed import mark_crashed_runs
from stockflow.db import get_engine, upgrade
from stockflow.ingest import IngestReport, begin_ingest, fail_ingest, resolve_window
from stockflow.logs import get_logger
from tasks.artifacts import publish_quarantine
from tasks.ingest import fetch_task, publish_artifacts, publish_failure, store_task, validate_task


@flow(name="ingest", retries=0, validate_parameters=True)
def ingest_flow(  # noqa: PLR0917 (flow parameters)
    source: SourceName | None = None,
    symbols: list[str] | None = None,
    path: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    since: dt.date | None = None,
    full: bool = False,
    replace: bool = False,
) -> IngestReport:
    """Ingest one batch (see the module docstring); returns the run's report."""
    settings = load_settings()
    engine = get_engine(settings.db_url)
    upgrade(engine)
    mark_crashed_runs(engine)
    src = source or settings.data.source
    if full:
        since = dt.date.min
    start, end, path = resolve_window(settings, start, end, path)
    run_id = begin_ingest(
        settings,
        engine,
        source=src,
        symbols=symbols,
        path=path,
        start=start,
        end=end,
        flow_run_id=str(flow_run.get_id() or "") or None,
    )
    try:
        fetch = fetch_task.with_options(retries=settings.data.fetch_retries)
        batch = fetch(
            settings,
            engine,
            run_id,
            source=src,
            symbols=symbols,
            path=path,
            start=start,
            end=end,
            since=since,
            replace=replace,
        )
        outcome = validate_task(settings, batch)
        report = store_task(settings, engine, batch, outcome)
    except BaseException as err:
        fail_ingest(engine, run_id, err)
        publish_failure(settings, run_id, src, err)
        raise
    publish_artifacts(settings, report)
    if report.rows_quarantined:  # the rows kept out, as a person reads them (issue 11)
        publish_quarantine(engine, run_id)
    for line in report.lines():
        get_logger().info(line)
    return report
