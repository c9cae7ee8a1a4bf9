"""Artifact publishing of the trade run, its approval stage and the ingest quarantine: the Prefect side
of what the plain functions in ``stockflow/`` compute (they return the data; these functions show it in
the UI under stable keys, so each key's history is the day-by-day record).

- the trade run's ``trade-orders``, ``trade-positions``, ``trade-summary``, ``equity-curve`` and
  ``trade-reports`` (content: :func:`stockflow.pipeline.report.trade_artifacts`);
- the approval stage's ``trade-approval`` markdown (content: :mod:`stockflow.pipeline.approval_stage`);
- the ingest run's ``quarantine`` table (content: :func:`stockflow.ops.quarantine.quarantine_rows`).

The retrain, drift, backtest and ingest-report artifacts are published by their own task modules.
"""

from __future__ import annotations

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from sqlalchemy import Engine

from stockflow.ops.quarantine import QUARANTINE_KEY, quarantine_rows
from stockflow.pipeline.approval_stage import APPROVAL_ARTIFACT_KEY
from stockflow.pipeline.report import (
    EQUITY_KEY,
    ORDERS_KEY,
    POSITIONS_KEY,
    REPORTS_KEY,
    SUMMARY_KEY,
    TradeArtifacts,
)


def publish_trade(art: TradeArtifacts) -> dict[str, str]:
    """Create the trade run's artifacts; returns key -> what was published."""
    out: dict[str, str] = {}
    create_table_artifact(table=art.orders_table(), key=ORDERS_KEY, description=art.orders_description)
    out[ORDERS_KEY] = f"{len(art.orders)} rows"
    create_table_artifact(
        table=art.positions_table(), key=POSITIONS_KEY, description="Positions after the run"
    )
    out[POSITIONS_KEY] = f"{len(art.positions)} positions"
    create_markdown_artifact(
        markdown=art.summary, key=SUMMARY_KEY, description="Equity, daily P&L and metrics"
    )
    out[SUMMARY_KEY] = "markdown"
    if art.equity is not None:
        create_link_artifact(
            link=art.equity.url, link_text=art.equity.text, key=EQUITY_KEY, description=art.equity.description
        )
        out[EQUITY_KEY] = art.equity.url
    create_link_artifact(
        link=art.reports.url, link_text=art.reports.text, key=REPORTS_KEY, description=art.reports.description
    )
    out[REPORTS_KEY] = art.reports.url
    return out


def publish_approval(markdown: str, description: str) -> None:
    """The approval stage's ``trade-approval`` markdown (the plan and its status)."""
    create_markdown_artifact(markdown=markdown, key=APPROVAL_ARTIFACT_KEY, description=description)


def publish_quarantine(engine: Engine, ingest_run_id: int | None, *, limit: int = 200) -> int:
    """Publish this ingest run's quarantined rows as the ``quarantine`` table artifact (inside a flow run);
    returns how many rows it lists."""
    rows = quarantine_rows(engine, ingest_run_id=ingest_run_id, limit=limit)
    create_table_artifact(
        table=rows or [{"symbol": "-", "rule": "-", "detail": "nothing quarantined in this run"}],
        key=QUARANTINE_KEY,
        description="Rows kept out of the store: symbol, session, rule, raw values, source file and row",
    )
    return len(rows)
