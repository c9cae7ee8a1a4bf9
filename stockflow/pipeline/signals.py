"""A session's view of every scored symbol: its rank, score and what the target book does with it.

Conventions (shared with the backtester's ML strategy, ``stockflow/backtest/strategies/ml.py``):

- The action comes from the target book (:mod:`stockflow.portfolio.construct`): BUY for a name that
  enters, SELL for a holding that leaves, HOLD for everything else (kept, or not in the top k).
- ``confidence`` has ONE meaning everywhere in stockflow: the model's calibrated probability that the
  stock outperforms the universe over the label horizon (``Prediction.prob_outperform``; 0.5 is no
  edge). It is what the hybrid approval band compares against. ``probability`` stores the same number.
- ``drivers``: the model's own attributions for the signal's row (``explain`` of each model class:
  LightGBM TreeSHAP ``pred_contrib``, the momentum model's own term, gradient x input for the LSTM; see
  ``models/explain.py``), largest first, each with its method and unit. Only when the model cannot be
  asked (no model object) do they fall back to z-scores against the symbol's recent history, and say so.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import numpy as np
import polars as pl

from stockflow.logs import get_logger

if TYPE_CHECKING:
    from stockflow.portfolio.construct import TargetBook


class Action(StrEnum):
    """What a signal asks for."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class SignalStatus(StrEnum):
    """Lifecycle of a stored signal."""

    PENDING = "pending"  # routed, not decided yet
    APPROVED = "approved"  # passed risk (and a person, where asked); about to be sent
    REJECTED = "rejected"  # refused by risk, by a person, or by re-validation
    EXPIRED = "expired"  # needed approval and none came in time
    EXECUTED = "executed"  # the broker accepted the order
    FAILED = "failed"  # sending failed (broker rejected, outcome unknown...)
    CANCELLED = "cancelled"  # the run stopped before deciding (halt, stale data, lock...)
    IGNORED = "ignored"  # HOLD, or below the mode's threshold


class PredictionLike(Protocol):
    """What a signal needs from a prediction (``stockflow.ml.predict.Prediction`` has these)."""

    @property
    def symbol(self) -> str: ...
    @property
    def session(self) -> dt.date: ...
    @property
    def model_version(self) -> str: ...
    @property
    def probability(self) -> float: ...
    @property
    def score(self) -> float: ...
    @property
    def prob_outperform(self) -> float: ...
    @property
    def expected_excess(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Driver:
    """One feature that drove a signal: its value, z-score against the symbol's history, and weight."""

    feature: str
    value: float
    z: float
    weight: float
    #: The model's own attribution (None: a z-score driver), in ``unit``, by ``method``.
    contribution: float | None = None
    unit: str = ""
    method: str = ""

    def describe(self) -> str:
        """e.g. ``rsi_14=71.2 (+0.042 log-odds)``, or ``rsi_14=71.2 (+2.1σ)`` for a z-score driver."""
        if self.contribution is not None:
            return f"{self.feature}={self.value:.4g} ({self.contribution:+.3g} {self.unit})"
        return f"{self.feature}={self.value:.4g} ({self.z:+.1f}σ)"

    def as_dict(self) -> dict[str, float | str | None]:
        """Plain JSON data for the database."""
        out: dict[str, float | str | None] = {
            "feature": self.feature, "value": self.value, "z": self.z, "weight": self.weight,
        }  # fmt: skip
        if self.contribution is not None:
            out.update(contribution=self.contribution, unit=self.unit, method=self.method)
        return out


@dataclass(frozen=True, slots=True)
class Signal:
    """A model's view on one symbol for one session, turned into an action."""

    symbol: str
    session: dt.date
    action: Action
    probability: float
    confidence: float
    model_version: str
    held_qty: float = 0.0
    drivers: tuple[Driver, ...] = field(default_factory=tuple)
    rank: int | None = None  # 1 = best score this session; None: not scored
    score: float | None = None
    expected_excess: float | None = None

    @property
    def model_confidence(self) -> float:
        """The model's own confidence ``|2p - 1|``."""
        return min(1.0, abs(2.0 * self.probability - 1.0))

    @property
    def is_exit(self) -> bool:
        """True for a SELL that closes (part of) a held long: it reduces risk."""
        return self.action is Action.SELL and self.held_qty > 0

    def explain(self) -> str:
        """One line: action, rank, score, P(outperform), expected excess and the top drivers."""
        what = "exit" if self.is_exit else self.action.value.upper()
        drivers = ", ".join(d.describe() for d in self.drivers) or "no feature detail"
        rank = f"rank {self.rank}" if self.rank is not None else "not scored"
        score = f", score {self.score:.4g}" if self.score is not None else ""
        excess = f", expected excess {self.expected_excess:+.2%}" if self.expected_excess is not None else ""
        return f"{what}: {rank}{score}, P(outperform)={self.confidence:.3f}{excess}; drivers: {drivers}"


def model_drivers(model: object, features: pl.DataFrame, *, top: int = 3) -> dict[str, tuple[Driver, ...]]:
    """The model's own top ``top`` attributions for each symbol's last row of ``features`` (symbol,
    session, features...), by its ``explain`` method (module docstring). The rows before the last give
    sequence models their window. Raises when the model has no ``explain`` or lacks a feature."""
    names: list[str] = list(getattr(model, "feature_names"))  # noqa: B009
    frame = features.sort(["symbol", "session"])
    X = frame.select([pl.col(c).cast(pl.Float64) for c in names]).to_numpy().astype(np.float64)
    groups = frame.get_column("symbol").to_numpy()
    last = frame.with_row_index("_i").group_by("symbol", maintain_order=True).agg(pl.col("_i").last())
    rows = last.get_column("_i").to_list()
    explanations = model.explain(X, groups=groups, rows=rows, top=top)  # type: ignore[attr-defined]
    out: dict[str, tuple[Driver, ...]] = {}
    for sym, expl in zip(last.get_column("symbol").to_list(), explanations, strict=True):
        out[str(sym)] = tuple(
            Driver(a.feature, a.value, 0.0, 1.0, round(a.contribution, 6), expl.unit, expl.method)
            for a in expl.attributions
        )
    return out


def feature_drivers(
    features: pl.DataFrame,
    feature_columns: Sequence[str],
    importances: Mapping[str, float] | None = None,
    *,
    top: int = 3,
    lookback: int = 250,
    model: object | None = None,
) -> dict[str, tuple[Driver, ...]]:
    """The top ``top`` drivers of each symbol's last row in ``features`` (symbol, session, features...).

    With ``model``: its own attributions (:func:`model_drivers`). Without one (or when it cannot explain
    these rows), each feature's value on the last row is standardized against the symbol's previous
    ``lookback`` rows; the score is ``|z| * importance`` (importance 1 when unknown). Null features are
    skipped.
    """
    if features.is_empty():
        return {}
    if model is not None:
        try:
            return model_drivers(model, features, top=top)
        except Exception as err:  # a readable fallback beats no "why"; the log says which was used
            get_logger().warning(
                f"drivers: the model could not explain these rows ({type(err).__name__}: {err}); "
                "showing feature z-scores instead"
            )
    cols = [c for c in feature_columns if c in features.columns]
    imp = {k: float(v) for k, v in (importances or {}).items() if math.isfinite(float(v))}
    total = sum(abs(v) for v in imp.values())
    out: dict[str, tuple[Driver, ...]] = {}
    for (sym,), part in features.sort(["symbol", "session"]).group_by(["symbol"], maintain_order=True):
        hist = part.tail(lookback + 1)
        last = hist.row(-1, named=True)
        scored: list[tuple[float, Driver]] = []
        for c in cols:
            v = last[c]
            if v is None or not math.isfinite(float(v)):
                continue
            series = hist.get_column(c).head(hist.height - 1).drop_nulls().cast(pl.Float64)
            series = series.filter(series.is_finite())
            mean = series.mean() if series.len() else None
            std = series.std() if series.len() > 1 else None
            z = (float(v) - float(mean)) / float(std) if mean is not None and std else 0.0  # type: ignore[arg-type]
            w = abs(imp.get(c, 0.0)) / total if total > 0 else 1.0
            scored.append((abs(z) * w, Driver(c, float(v), round(z, 3), round(w, 4))))
        scored.sort(key=lambda t: (-t[0], t[1].feature))
        out[str(sym)] = tuple(d for _, d in scored[:top])
    return out


def book_signals(
    book: TargetBook,
    predictions: Iterable[PredictionLike],
    session: dt.date,
    drivers: Mapping[str, tuple[Driver, ...]] | None = None,
) -> list[Signal]:
    """One signal per scored symbol and per holding that leaves (best rank first, unscored last).

    A prediction whose ``prob_outperform`` is not a number in [0, 1] raises ``ValueError`` naming the
    symbol: a broken model must not trade.
    """
    preds = {p.symbol: p for p in predictions}
    lines = {ln.symbol: ln for ln in book.lines}
    ranks = book.selection.ranks
    symbols = sorted(set(preds) | set(lines), key=lambda s: (ranks.get(s, len(ranks) + 1), s))
    version = next(iter(preds.values())).model_version if preds else ""
    out: list[Signal] = []
    for sym in symbols:
        pred = preds.get(sym)
        ln = lines.get(sym)
        prob = _check_probability(sym, pred.prob_outperform) if pred is not None else 0.5
        action = Action.HOLD
        if ln is not None and ln.action == "enter" and ln.target_qty > 0:
            action = Action.BUY
        elif ln is not None and ln.action == "exit":
            action = Action.SELL
        out.append(
            Signal(
                symbol=sym,
                session=pred.session if pred is not None else session,
                action=action,
                probability=prob,
                confidence=prob,
                model_version=pred.model_version if pred is not None else version,
                held_qty=ln.held_qty if ln is not None else 0.0,
                drivers=(drivers or {}).get(sym, ()),
                rank=ranks.get(sym),
                score=float(pred.score) if pred is not None else None,
                expected_excess=float(pred.expected_excess) if pred is not None else None,
            )
        )
    return out


def _check_probability(symbol: str, p: float) -> float:
    if not isinstance(p, int | float) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"prediction for {symbol} has P(outperform) {p!r}, expected a number in [0, 1]")
    return float(p)
