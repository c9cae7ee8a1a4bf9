"""Predictions of the champion for one session, stored once per (symbol, session, model version).

:func:`predict_latest` (the contract in docs/design.md) loads the champion, computes features over the
live history length (``required_history`` bars plus the model's own context), scores the target session
and stores the predictions idempotently. No champion is :class:`stockflow.ml.registry.NoChampionError`;
a model that does not match the features is a :class:`ModelError`; a symbol that cannot be scored
(no bar that session, too little history, undefined features) is recorded as a skip with its reason,
never scored with made-up inputs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from models.base import score_of
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_data import BarRow
from stockflow.db.models_ml import PredictionRow, PredictionSkip
from stockflow.errors import ConfigError, DataError, ModelError
from stockflow.features import build_features_report, feature_set, required_history
from stockflow.logs import get_logger
from stockflow.ml.registry import load_champion, load_version
from stockflow.ml.training import predict_rows, with_context
from stockflow.store.bars import load_bars

if TYPE_CHECKING:
    from stockflow.config import Settings


@dataclass(frozen=True)
class Prediction:
    """One model version's view of one symbol for the horizon after ``session``'s close.

    ``score`` ranks symbols within the session (higher is better; a top-k portfolio sorts by it);
    ``prob_outperform`` is the calibrated probability that the symbol beats the universe's mean return
    over ``features.label_horizon`` sessions; ``expected_excess`` the expected return over the
    universe's mean for that horizon. ``probability`` equals ``prob_outperform`` (kept for existing
    readers) and so does ``confidence``: it has ONE meaning in stockflow, P(outperform). Rows stored
    before revision 0006_ml_panel carry no cross-sectional outputs: their ``score`` and
    ``expected_excess`` are NaN.
    """

    symbol: str
    session: dt.date
    model_version: str
    probability: float
    confidence: float
    score: float
    prob_outperform: float
    expected_excess: float


@dataclass(frozen=True)
class PredictReport:
    """What a prediction run produced: the session, the model, the predictions and the skips."""

    session: dt.date
    model_version: str
    predictions: list[Prediction]
    skipped: dict[str, str] = field(default_factory=dict)
    stored: int = 0  # rows newly written (0 on a repeat run)
    #: The loaded model, so a caller can explain these predictions without loading it a second time.
    model: Any = field(default=None, repr=False, compare=False)
    #: The feature rows the model scored for the stored predictions (symbol, session, features...;
    #: per symbol its target row last, after the context rows a sequence model read), so an explanation
    #: explains exactly these rows instead of building the features again. Empty without predictions.
    scored: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False, compare=False)


def history_bars(settings: Settings, context_rows: int) -> int:
    """Bars per symbol a live prediction loads: the features' warm-up plus the model's context."""
    return required_history(settings.features) + max(context_rows, 1) - 1


def target_session(
    engine: Engine, symbols: Sequence[str] | None, as_of: dt.date | None
) -> tuple[dt.date, dict[str, dt.date]]:
    """The session to predict (latest usable bar on or before ``as_of``) and each symbol's last bar."""
    q = select(BarRow.symbol, func.max(BarRow.session)).where(BarRow.quarantined.is_(False))
    if symbols:
        q = q.where(BarRow.symbol.in_(list(symbols)))
    if as_of:
        q = q.where(BarRow.session <= as_of)
    with engine.connect() as conn:
        last = {s: d for s, d in conn.execute(q.group_by(BarRow.symbol))}
    if not last:
        raise DataError(
            f"no bars for {list(symbols) if symbols else 'any symbol'}"
            f"{f' on or before {as_of}' if as_of else ''}; run `stockflow ingest` first",
            rule="predict_data",
        )
    return max(last.values()), last


def _insert(
    engine: Engine, table: type[PredictionRow] | type[PredictionSkip], rows: list[dict[str, object]]
) -> int:
    if not rows:
        return 0
    with transaction(engine) as s:
        tbl = table.__table__
        ins = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(tbl)  # type: ignore[arg-type]
        stmt = ins.on_conflict_do_nothing(index_elements=["symbol", "session", "model_version"]).returning(
            tbl.c.id
        )
        return len(s.connection().execute(stmt, rows).all())


def stored_predictions(
    engine: Engine,
    *,
    session: dt.date | None = None,
    model_version: str | None = None,
    symbols: Sequence[str] | None = None,
) -> list[Prediction]:
    """Stored predictions, filtered, ordered by session and symbol."""
    q = select(PredictionRow).order_by(PredictionRow.session, PredictionRow.symbol)
    if session:
        q = q.where(PredictionRow.session == session)
    if model_version:
        q = q.where(PredictionRow.model_version == model_version)
    if symbols:
        q = q.where(PredictionRow.symbol.in_(list(symbols)))
    with transaction(engine) as s:
        return [
            Prediction(
                r.symbol,
                r.session,
                r.model_version,
                r.probability,
                r.confidence,
                score=_num(r.score),
                prob_outperform=r.probability if r.prob_outperform is None else r.prob_outperform,
                expected_excess=_num(r.expected_excess),
            )
            for r in s.scalars(q)
        ]


def _num(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def run_predict(
    settings: Settings,
    engine: Engine,
    symbols: Sequence[str] | None = None,
    as_of: dt.date | None = None,
    *,
    version: str | None = None,
    bars: pl.DataFrame | None = None,
    bars_start: dt.date | None = None,
) -> PredictReport:
    """Score the target session with the champion (or the registered ``version`` when given: an explicit
    choice, e.g. a demo with the best challenger) and store the result (see the module doc).

    ``bars`` (stored bars from ``bars_start`` up to ``as_of``, e.g. a trade run's market view read once)
    are used instead of reading the store again when they reach back far enough for the model's history;
    otherwise the bars are loaded here."""
    log = get_logger()
    entry, model = load_version(settings, engine, version) if version else load_champion(settings, engine)
    # Features are computed in the model's own feature set (the settings may have moved on since).
    try:
        fset = feature_set(model.feature_set_version)
    except ConfigError:
        raise ModelError(
            f"model {entry.version} was trained on feature set {model.feature_set_version!r}, which this "
            "code does not compute; retrain"
        ) from None
    if list(model.feature_names) != list(fset.columns):
        raise ModelError(
            f"model {entry.version} was trained on features {model.feature_names} but feature set "
            f"{fset.version} computes {list(fset.columns)}; retrain"
        )
    fsettings = settings.features.model_copy(update={"feature_set_version": fset.version})
    universe = list(symbols) if symbols else (list(settings.data.symbols) or list(entry.symbols) or None)
    session, last = target_session(engine, universe, as_of)
    wanted = universe or sorted(last)
    skipped: dict[str, str] = {}
    for sym in wanted:
        if sym not in last:
            skipped[sym] = "no stored bars" + (f" on or before {as_of}" if as_of else "")
        elif last[sym] != session:
            skipped[sym] = f"no bar for session {session} (last bar {last[sym]})"
    present = [s for s in wanted if s not in skipped]

    n_hist = history_bars(settings, model.context_rows)
    # Calendar days back that surely hold n_hist sessions (252 sessions a year, plus holidays' slack).
    start = session - dt.timedelta(days=math.ceil(n_hist * 1.5) + 30)
    if not present:
        bars = pl.DataFrame()
    elif bars is not None and bars_start is not None and bars_start <= start:
        # The caller's bars reach back far enough (a trade run's market view): no second read.
        bars = bars.filter(pl.col("symbol").is_in(present) & pl.col("session").is_between(start, session))
    else:
        bars = load_bars(engine, present, start, session)
    rows = scored = pl.DataFrame()
    if present and not bars.is_empty():
        bars = bars.group_by("symbol", maintain_order=True).tail(n_hist)
        fres = build_features_report(bars, fsettings)
        skipped.update({s: f"features: {r}" for s, r in fres.skipped.items()})
        frame = fres.frame
        if not frame.is_empty():
            usable = frame.filter(~pl.col("warmup"))
            counts = dict(usable.group_by("symbol").len().iter_rows())
            target = usable.filter(pl.col("session") == session).sort("symbol")
            have = set(target.get_column("symbol").to_list())
            for sym in frame.get_column("symbol").unique().to_list():
                if sym not in have:
                    skipped[sym] = (
                        f"too little history or undefined features at {session}: "
                        f"need {n_hist} clean bars (settings.features.min_history and the model's window)"
                    )
                elif counts.get(sym, 0) < model.context_rows:
                    skipped[sym] = (
                        f"only {counts.get(sym, 0)} usable rows, the model reads {model.context_rows}"
                    )
            target = target.filter(~pl.col("symbol").is_in(list(skipped)))
            if not target.is_empty():
                p = predict_rows(model, frame, target, fset.columns)
                rows = target.select("symbol").with_columns(pl.Series("probability", p))
                scored = with_context(frame, target, model.context_rows)[0]  # the rows predict_rows read
    now = utcnow()
    records: list[dict[str, object]] = []
    for sym, prob in rows.iter_rows() if not rows.is_empty() else []:
        if prob is None or not np.isfinite(prob):
            skipped[sym] = "model returned a non-finite probability"
            continue
        records.append(
            {
                "symbol": sym,
                "session": session,
                "model_version": entry.version,
                "probability": float(prob),
                "confidence": float(prob),  # one meaning: P(outperform), see the class docstring
                "score": float(score_of(np.array([prob]))[0]),
                "prob_outperform": float(prob),
                "expected_excess": float(model.expected_excess(np.array([prob]))[0]),
                "created_at": now,
            }
        )
    stored = _insert(engine, PredictionRow, records)
    skip_rows = [
        {"symbol": s, "session": session, "model_version": entry.version, "reason": r, "created_at": now}
        for s, r in sorted(skipped.items())
    ]
    _insert(engine, PredictionSkip, skip_rows)
    for s, r in sorted(skipped.items()):
        log.warning("predict: skipped %s: %s", s, r)
    preds = stored_predictions(
        engine, session=session, model_version=entry.version, symbols=[str(r["symbol"]) for r in records]
    )
    log.info(
        "predict: %d predictions for %s by %s (%d new), %d skipped",
        len(preds),
        session,
        entry.version,
        stored,
        len(skipped),
    )
    if not scored.is_empty():
        scored = scored.filter(pl.col("symbol").is_in([str(r["symbol"]) for r in records]))
    return PredictReport(session, entry.version, preds, skipped, stored, model=model, scored=scored)


def predict_latest(
    settings: Settings,
    engine: Engine,
    symbols: Sequence[str] | None = None,
    as_of: dt.date | None = None,
    *,
    version: str | None = None,
) -> list[Prediction]:
    """Predictions of the champion for the latest session (or the last one on or before ``as_of``),
    stored idempotently. Raises :class:`stockflow.ml.registry.NoChampionError` when there is no champion;
    skipped symbols are stored in ``prediction_skips`` (use :func:`run_predict` to get them back).
    ``version`` predicts with that registered model instead of the champion."""
    return run_predict(settings, engine, symbols, as_of, version=version).predictions
