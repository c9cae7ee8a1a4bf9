"""Prefect tasks of the ingest flow: coarse stages over all symbols, wrapping ``stockflow.ingest``.

Only the fetch retries, and only on :class:`~stockflow.errors.RetryableError` (timeouts, 429, 5xx on
reads): it writes nothing. Validation and the store are not retried: a second attempt would do the same
thing again. No task caches its result (every run reads the source afresh; inputs are large frames).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from prefect import Task, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from stockflow.errors import RetryableError
from stockflow.ingest import fetch_stage, store_stage, validate_stage
from stockflow.ops.reports import report_url

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.config import Settings
    from stockflow.ingest import Batch, IngestReport
    from stockflow.validation import ValidationOutcome

SUMMARY_KEY = "ingest-summary"
DOCS_KEY = "data-docs"


def _retry_on_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    try:
        state.result()
    except RetryableError:
        return True
    except Exception:
        return False
    return False


@task(
    name="fetch-bars",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=_retry_on_transient,
    cache_policy=NO_CACHE,
)
def fetch_task(
    settings: Settings,
    engine: Engine,
    ingest_run_id: int,
    *,
    source: str,
    symbols: list[str] | None,
    path: str | None,
    start: dt.date | None,
    end: dt.date | None,
    since: dt.date | None = None,
    replace: bool = False,
) -> Batch:
    """Fetch from the source and keep only bars newer than what is stored, plus the re-read window from
    ``since`` (reads only; retried)."""
    return fetch_stage(
        settings,
        engine,
        ingest_run_id,
        source=source,
        symbols=symbols,
        path=path,
        start=start,
        end=end,
        since=since,
        replace=replace,
    )


@task(name="validate-bars", cache_policy=NO_CACHE)
def validate_task(settings: Settings, batch: Batch) -> ValidationOutcome | None:
    """One Great Expectations checkpoint over the whole new batch; writes the Data Docs."""
    return validate_stage(settings, batch)


@task(name="store-and-quarantine", cache_policy=NO_CACHE)
def store_task(
    settings: Settings, engine: Engine, batch: Batch, outcome: ValidationOutcome | None
) -> IngestReport:
    """Store bars, quarantine flags and rows, and the validation summary in one transaction; fail loudly
    when the quarantined share passes the threshold."""
    return store_stage(settings, engine, batch, outcome)


def publish_artifacts(settings: Settings, report: IngestReport) -> None:
    """The run's markdown summary and a link to its Data Docs page (stable keys, so the UI shows history)."""
    create_markdown_artifact(
        key=SUMMARY_KEY,
        markdown=report.to_markdown(settings),
        description=f"ingest run {report.ingest_run_id} ({report.source})",
    )
    if report.data_docs_path:
        create_link_artifact(
            key=DOCS_KEY,
            link=report_url(settings, report.data_docs_path),
            link_text=f"Data Docs of ingest run {report.ingest_run_id}",
            description=f"file: {report.data_docs_path}",
        )


def publish_failure(settings: Settings, ingest_run_id: int, source: str, error: BaseException) -> None:
    """A markdown artifact saying why the ingest failed (the flow then fails with the same error)."""
    create_markdown_artifact(
        key=SUMMARY_KEY,
        markdown=f"## Ingest run {ingest_run_id} — source `{source}` FAILED\n\n"
        f"**{type(error).__name__}**: {str(error).replace('|', chr(10) + '- ')}",
        description=f"ingest run {ingest_run_id} failed",
    )
