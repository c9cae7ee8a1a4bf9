"""Prefect tasks of the ml area: coarse stages (all symbols, all folds) wrapping the plain functions.

Inputs are settings, an engine and frames held in memory, so no task caches (NO_CACHE): every run reads
the current state store. Artifacts use stable keys so the UI shows their history: ``retrain-metrics``
(table), ``retrain-model-card`` (markdown), ``drift-report`` (link), ``drift-columns`` (table).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.deployments import run_deployment

from models.cards import metrics_rows, retrain_markdown
from stockflow.logs import get_logger
from stockflow.ml.drift import run_drift
from stockflow.ml.retrain import evaluate, finalize, prepare_data
from stockflow.ml.retrain_data import final_here, serial_runner

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.config import Settings
    from stockflow.ml.drift import DriftResult
    from stockflow.ml.retrain import Evaluation, FinalRunner, FoldRunner, PreparedData, RetrainReport

RETRAIN_METRICS_KEY = "retrain-metrics"
RETRAIN_CARD_KEY = "retrain-model-card"
DRIFT_REPORT_KEY = "drift-report"
DRIFT_COLUMNS_KEY = "drift-columns"


@task(name="prepare-training-data", cache_policy=NO_CACHE)
def prepare_training_data(
    settings: Settings,
    engine: Engine,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    to_store: bool = False,
) -> PreparedData:
    """Bars -> features -> walk-forward folds for the chosen universe and window. ``to_store``: the
    features written per chunk to the feature store under ``data_dir`` (by the Dask workers when a
    cluster is in reach), not held in this process."""
    data = prepare_data(settings, engine, symbols=symbols, start=start, end=end, to_store=to_store)
    get_logger().info(
        "training data: %d symbols, %d rows, %d folds; skipped %s",
        len(data.symbols), data.rows, len(data.folds), data.skipped or "none",
    )  # fmt: skip
    return data


@task(name="evaluate-challengers", cache_policy=NO_CACHE)
def evaluate_challengers(
    settings: Settings,
    engine: Engine,
    data: PreparedData,
    kinds: Sequence[str],
    runner: FoldRunner | None = None,
) -> Evaluation:
    """Walk-forward scores of challengers, the champion's recipe, baselines and the shuffled control
    on the same folds (folds are independent and seeded), and the promotion decision. ``runner`` scores
    the folds (default: one after the other here; tasks.compute.fold_runner: one task per kind and fold)."""
    return evaluate(settings, engine, data, kinds, runner or serial_runner)


@task(name="train-register-promote", cache_policy=NO_CACHE)
def train_register_promote(
    settings: Settings,
    engine: Engine,
    data: PreparedData,
    evaluation: Evaluation,
    run_id: int,
    *,
    final_runner: FinalRunner | None = None,
) -> RetrainReport:
    """Final models on the latest window, saved and registered; the candidate promoted when decided.
    ``final_runner`` fits them (default: here; tasks.compute.final_runner: one task per kind on Dask)."""
    return finalize(settings, engine, data, evaluation, run_id, final_runner=final_runner or final_here)


def retrain_summary(report: RetrainReport) -> dict[str, Any]:
    """Plain-data summary of a retrain (the flow's return value)."""
    return {
        "retrain_run_id": report.retrain_run_id,
        "promoted": report.promoted,
        "reason": report.reason,
        "metric": report.metric,
        "champion_before": report.champion_before,
        "champion_after": report.champion_after,
        "candidate": report.candidate,
        "challengers": report.challengers,
        "symbols": report.symbols,
        "skipped": report.skipped,
        "train_window": [str(report.train_start), str(report.train_end)],
        "seconds": round(report.seconds, 1),
        "folds": report.folds,
        "table": report.table,
    }


@task(name="publish-retrain-artifacts", cache_policy=NO_CACHE)
def publish_retrain_artifacts(report: RetrainReport) -> dict[str, str]:
    """Table of out-of-sample metrics (models, control, baselines) and the markdown model card."""
    table_id = create_table_artifact(
        table=metrics_rows(report.table),
        key=RETRAIN_METRICS_KEY,
        description=f"Walk-forward out-of-sample metrics, models vs baselines. {report.reason}",
    )
    md = retrain_markdown(
        reason=report.reason,
        promoted=report.promoted,
        metric=report.metric,
        champion_before=report.champion_before,
        champion_after=report.champion_after,
        symbols=report.symbols,
        folds=report.folds,
        table=report.table,
        cards=report.cards,
        skipped=report.skipped,
    )
    card_id = create_markdown_artifact(
        markdown=md, key=RETRAIN_CARD_KEY, description="Retrain decision and cards"
    )
    return {"table": str(table_id), "card": str(card_id)}


def request_retrain_deployment() -> str:
    """Start a run of the ``retrain`` flow's deployment (first one found) without waiting for it.

    Returns what happened, for the drift report: the flow run id, or why none was started.
    """
    with get_client(sync_client=True) as client:
        deps = client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])), limit=1)
    if not deps:
        return (
            "retrain requested; no 'retrain' deployment exists: run `stockflow retrain` (or `stockflow up`)"
        )
    name = f"retrain/{deps[0].name}"
    run: Any = run_deployment(name=name, timeout=0)  # sync context: a FlowRun, not a coroutine
    return f"retrain requested: flow run {run.id} of deployment {name}"


@task(name="monitor-drift", cache_policy=NO_CACHE)
def monitor_drift(
    settings: Settings, engine: Engine, symbols: Sequence[str] | None = None, *, request: bool = True
) -> DriftResult:
    """Evidently drift of recent features and predictions vs the champion's reference; stored, HTML
    saved; above the threshold the ``retrain`` deployment is started (when ``request``)."""
    return run_drift(
        settings, engine, symbols, request_retrain=request_retrain_deployment if request else None
    )


def drift_summary(result: DriftResult) -> dict[str, Any]:
    """Plain-data summary of a drift check (the monitor flow's return value)."""
    return {
        "report_id": result.report_id,
        "model_version": result.model_version,
        "drift_share": round(result.drift_share, 4),
        "threshold": result.threshold,
        "dataset_drift": result.dataset_drift,
        "prediction_drift": result.prediction_drift,
        "prediction_drift_score": result.prediction_drift_score,
        "report_path": result.report_path,
        "url": result.url,
        "retrain_requested": result.retrain_requested,
        "retrain_request": result.retrain_request,
        "reference_window": [str(d) for d in result.reference_window],
        "current_window": [str(d) for d in result.current_window],
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "drifted_columns": sorted(
            c for c, v in result.column_scores.items() if v["drifted"] and c != "prediction"
        ),
    }


@task(name="publish-drift-artifacts", cache_policy=NO_CACHE)
def publish_drift_artifacts(result: DriftResult) -> dict[str, str]:
    """A link to the HTML report and the per-column scores as a table."""
    status = "DRIFT" if result.dataset_drift else "no drift"
    cur, ref = result.current_window, result.reference_window
    link_id = create_link_artifact(
        link=result.url,
        link_text=f"Evidently drift report ({status}, share {result.drift_share:.2f})",
        key=DRIFT_REPORT_KEY,
        description=f"Model {result.model_version}: current {cur[0]}..{cur[1]} "
        f"vs reference {ref[0]}..{ref[1]}. "
        f"File: {result.report_path}",
    )
    rows = [
        {**r, "score": None if r["score"] is None else round(float(r["score"]), 5)}
        for r in sorted(result.table, key=lambda r: (not r["drifted"], r["column"]))
    ]
    table_id = create_table_artifact(
        table=rows,
        key=DRIFT_COLUMNS_KEY,
        description=f"Per-column drift ({status}: share {result.drift_share:.2f}, "
        f"threshold {result.threshold})",
    )
    return {"link": str(link_id), "table": str(table_id)}
