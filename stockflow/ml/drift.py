"""Drift monitoring with Evidently 0.7: recent features and champion predictions vs the training reference.

The reference is the champion's validation window saved at training time (``reference.parquet`` in its
artifact directory: features plus the model's prediction on rows it was not fitted on). The current
window is the last ``settings.drift.current_days`` sessions, featurized from stored bars and scored by
the champion. Evidently's ``DataDriftPreset`` tests every feature column and ``ValueDrift`` tests the
prediction column; the self-contained HTML goes to ``reports_dir/drift/``, the drift share and per-column
scores to ``drift_reports``. A drift share above ``settings.drift.drift_share_threshold`` requests a
retrain (through a callable the flow supplies).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_ml import DriftReportRow
from stockflow.errors import DataError, ModelError
from stockflow.features import build_features_report
from stockflow.jsonable import jsonable
from stockflow.logs import Stages, get_logger
from stockflow.ml.predict import history_bars
from stockflow.ml.registry import load_champion, model_dir
from stockflow.ml.training import predict_rows
from stockflow.ops.reports import report_url
from stockflow.store.bars import load_bars

if TYPE_CHECKING:
    from stockflow.config import Settings

REFERENCE_FILE = "reference.parquet"
PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True)
class DriftResult:
    """One drift comparison as stored, plus the report's URL."""

    report_id: int
    model_version: str
    drift_share: float
    threshold: float
    dataset_drift: bool
    column_scores: dict[str, dict[str, Any]]
    prediction_drift_score: float | None
    prediction_drift: bool
    report_path: str
    url: str
    retrain_requested: bool
    retrain_request: str | None
    reference_window: tuple[dt.date | None, dt.date | None]
    current_window: tuple[dt.date | None, dt.date | None]
    n_reference: int = 0
    n_current: int = 0
    table: list[dict[str, Any]] = field(default_factory=list)


def _window(frame: pl.DataFrame) -> tuple[dt.date | None, dt.date | None]:
    if frame.is_empty():
        return None, None
    return frame.get_column("session").min(), frame.get_column("session").max()  # type: ignore[return-value]


def load_reference(settings: Settings, version_dir: Path) -> pl.DataFrame:
    """The champion's drift reference, cut to the last ``settings.drift.reference_days`` sessions."""
    path = version_dir / REFERENCE_FILE
    if not path.is_file():
        raise ModelError(f"drift reference {path} is missing; retrain to create one")
    try:
        ref = pl.read_parquet(path)
    except Exception as err:
        raise ModelError(f"drift reference {path} is corrupt: {err}") from err
    days = ref.get_column("session").unique().sort()
    if days.len() > settings.drift.reference_days:
        ref = ref.filter(pl.col("session") >= days[-settings.drift.reference_days])
    return ref


def current_window(
    settings: Settings, engine: Engine, model: Any, symbols: Sequence[str] | None
) -> pl.DataFrame:
    """Features of the last ``current_days`` sessions with the champion's prediction on them."""
    from stockflow.ml.predict import target_session

    last_session, _ = target_session(engine, symbols, None)
    n_hist = history_bars(settings, model.context_rows) + settings.drift.current_days
    start = last_session - dt.timedelta(days=math.ceil(n_hist * 1.5) + 30)
    bars = load_bars(engine, symbols, start, last_session)
    bars = bars.group_by("symbol", maintain_order=True).tail(n_hist)
    frame = build_features_report(bars, settings.features).frame
    usable = frame.filter(~pl.col("warmup")) if not frame.is_empty() else frame
    if usable.is_empty():
        raise DataError(
            "no usable feature rows in the current window (too little history)", rule="drift_data"
        )
    days = usable.get_column("session").unique().sort()
    cur = usable.filter(pl.col("session") >= days[max(days.len() - settings.drift.current_days, 0)]).sort(
        ["symbol", "session"]
    )
    p = predict_rows(model, frame, cur, model.feature_names)
    return cur.select("symbol", "session", *model.feature_names).with_columns(pl.Series(PREDICTION_COLUMN, p))


def _drifted(score: float | None, method: str, threshold: float | None) -> bool:
    """Evidently's rule: p-value tests drift below the threshold, distances above it."""
    if score is None or threshold is None:
        return False
    return score < threshold if "p_value" in method else score >= threshold


def evidently_snapshot(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Sequence[str],
    *,
    threshold: float,
    method: str | None = None,
) -> Any:
    """Run Evidently (DataDriftPreset on ``columns`` + ValueDrift on the prediction); its snapshot."""
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    cols = [*columns, PREDICTION_COLUMN]
    report = Report(
        [DataDriftPreset(columns=list(columns), drift_share=threshold), ValueDrift(column=PREDICTION_COLUMN)]
    )
    return report.run(
        current_data=current.select(cols).to_pandas(), reference_data=reference.select(cols).to_pandas()
    )


def drift_scores(snapshot: Any, columns: Sequence[str]) -> tuple[float, dict[str, dict[str, Any]]]:
    """(drift share, per-column scores including the prediction) of an Evidently snapshot."""
    share: float | None = None
    scores: dict[str, dict[str, Any]] = {}
    for m in snapshot.dict().get("metrics", []):
        cfg = m.get("config", {})
        kind = str(cfg.get("type", ""))
        if kind.endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif kind.endswith("ValueDrift"):
            score = m.get("value")
            score = float(score) if score is not None and math.isfinite(float(score)) else None
            method = str(cfg.get("method") or "")
            thr = cfg.get("threshold")
            scores[str(cfg.get("column"))] = {
                "score": score,
                "method": method,
                "threshold": thr,
                "drifted": _drifted(score, method, thr),
            }
    if share is None:  # pragma: no cover - Evidently always emits DriftedColumnsCount with the preset
        feats = [c for c in columns if c in scores]
        share = sum(scores[c]["drifted"] for c in feats) / max(len(feats), 1)
    return share, scores


#: The stages of a drift check, as the monitor run logs them (see :class:`stockflow.logs.Stages`).
STAGES = (
    "loading the champion and its drift reference",
    "building the current window (features and the champion's predictions)",
    "running Evidently (DataDriftPreset on the features, ValueDrift on the prediction)",
    "writing the HTML report",
    "storing the scores and deciding on a retrain",
)


def run_drift(
    settings: Settings,
    engine: Engine,
    symbols: Sequence[str] | None = None,
    *,
    request_retrain: Callable[[], str] | None = None,
) -> DriftResult:
    """Compare the current window with the champion's reference, save and store the report, and request
    a retrain when the drift share exceeds the threshold (``request_retrain`` returns what it did)."""
    log = get_logger()
    stages = Stages("monitor", STAGES)
    load, build, evidently, write, store = STAGES
    with stages.stage(load):
        entry, model = load_champion(settings, engine)
        reference = load_reference(settings, model_dir(settings, entry))
    universe = list(symbols) if symbols else (list(settings.data.symbols) or list(entry.symbols) or None)
    with stages.stage(build, f"model {entry.version}, last {settings.drift.current_days} sessions"):
        current = current_window(settings, engine, model, universe)
    threshold = settings.drift.drift_share_threshold
    now = utcnow()
    html = Path(settings.reports_dir) / "drift" / f"drift-{now:%Y%m%dT%H%M%S}-{entry.version}.html"
    detail = (
        f"{len(model.feature_names)} columns, {reference.height} reference and {current.height} current rows"
    )
    with stages.stage(evidently, detail):
        snapshot = evidently_snapshot(
            reference, current, model.feature_names, threshold=threshold, method=settings.drift.method
        )
        share, scores = drift_scores(snapshot, model.feature_names)
    pred = scores.get(PREDICTION_COLUMN, {})
    pred_score = "-" if pred.get("score") is None else f"{pred['score']:.4g}"
    log.info(
        f"drift share {share:.2f} (threshold {threshold:.2f}); prediction drift {pred_score} "
        f"({pred.get('method') or '-'}){': DRIFTED' if pred.get('drifted') else ''}"
    )
    with stages.stage(write, str(html)):
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))
    with stages.stage(store):
        exceeded = share > threshold
        requested, request_note = False, None
        if exceeded and settings.drift.request_retrain:
            requested = True
            if request_retrain is None:
                request_note = (
                    "retrain requested; no orchestrator was given to start it: run `stockflow retrain`"
                )
            else:
                try:
                    request_note = request_retrain()
                except Exception as err:  # the report must be stored even when the request fails
                    request_note = f"retrain request failed: {type(err).__name__}: {err}"
        elif exceeded:
            request_note = "drift above threshold; settings.drift.request_retrain is off"
        ref_win, cur_win = _window(reference), _window(current)
        with transaction(engine) as s:
            row = DriftReportRow(
                created_at=now,
                model_version=entry.version,
                reference_start=ref_win[0],
                reference_end=ref_win[1],
                current_start=cur_win[0],
                current_end=cur_win[1],
                n_reference=reference.height,
                n_current=current.height,
                drift_share=float(share),
                threshold=threshold,
                dataset_drift=exceeded,
                column_scores=jsonable(scores),
                prediction_drift_score=pred.get("score"),
                prediction_drift=bool(pred.get("drifted", False)),
                report_path=str(html.resolve()),
                retrain_requested=requested,
                retrain_request=request_note,
            )
            s.add(row)
            s.flush()
            report_id = int(row.id)
    log.info("drift: share %.2f (threshold %.2f) for %s; report %s%s", share, threshold, entry.version, html,
             f"; {request_note}" if request_note else "")  # fmt: skip
    stages.finish()
    table = [
        {
            "column": c,
            "score": v["score"],
            "method": v["method"],
            "threshold": v["threshold"],
            "drifted": v["drifted"],
        }
        for c, v in scores.items()
    ]
    return DriftResult(
        report_id=report_id,
        model_version=entry.version,
        drift_share=float(share),
        threshold=threshold,
        dataset_drift=exceeded,
        column_scores=scores,
        prediction_drift_score=pred.get("score"),
        prediction_drift=bool(pred.get("drifted", False)),
        report_path=str(html.resolve()),
        url=report_url(settings, html),
        retrain_requested=requested,
        retrain_request=request_note,
        reference_window=ref_win,
        current_window=cur_win,
        n_reference=reference.height,
        n_current=current.height,
        table=table,
    )
