"""The ML strategy: the live loop's top-k target book over the model's scores, or threshold signals.

With ``book_rules`` (:meth:`MLStrategy.topk_from_settings`, what the live ``trade`` run does and what
the ``ml`` / ``ml_champion`` backtests use) the engine asks :func:`stockflow.portfolio.target_book` at
every close what to hold (:meth:`MLStrategy.book_spec`): the top ``portfolio.top_k`` by score with the
hold buffer and change bound, sized by the risk rules, exits first.

Without it (the older per-symbol rule, kept for comparisons) entry and exit follow the thresholds
(``settings.trading``): in ``auto`` mode a buy needs
P(up) >= ``auto_threshold``; with ``approve_all`` (what manual/hybrid would trade if every proposal
were approved) P(up) >= ``approval_threshold``. A position is held until P(up) falls below
``exit_threshold`` (default 0.5: the model no longer expects a rise). Strength is the confidence
``|2p - 1|``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import polars as pl

from stockflow.backtest.strategies.base import empty_signals, hold_state, require, symbol_blocks

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.backtest.book import BookSpec
    from stockflow.config import Settings
    from stockflow.config.sections import FeatureSettings
    from stockflow.portfolio import BookRules

ThresholdMode = Literal["auto", "approve_all"]


def probabilities_to_signals(
    probabilities: pl.DataFrame, entry_threshold: float, exit_threshold: float = 0.5
) -> pl.DataFrame:
    """Signals from a frame ``symbol, session, probability``: long from p >= entry until p < exit;
    bearish (-1) from p <= 1 - entry until p > 1 - exit; flat otherwise. ``entry`` (may open a
    position) only where p >= entry.
    """
    if probabilities.is_empty():
        return empty_signals()
    p_frame = probabilities.select("symbol", "session", pl.col("probability").cast(pl.Float64)).sort(
        ["symbol", "session"]
    )
    p = p_frame.get_column("probability").to_numpy()
    valid = np.isfinite(p)
    pp = np.where(valid, p, 0.5)
    sig = np.zeros(len(p))
    for _sym, a, z in symbol_blocks(p_frame):  # hold states run within each symbol
        long_ = hold_state(pp[a:z] >= entry_threshold, pp[a:z] < exit_threshold, valid[a:z])
        short = hold_state(pp[a:z] <= 1 - entry_threshold, pp[a:z] > 1 - exit_threshold, valid[a:z])
        sig[a:z] = long_ - short
    keep = valid
    out = p_frame.select("symbol", "session").with_columns(
        pl.Series("signal", np.nan_to_num(sig), dtype=pl.Int8),
        pl.Series("strength", np.clip(np.abs(2 * pp - 1), 0, 1), dtype=pl.Float64),
        # Like the live loop: a flat symbol is bought only at P(up) >= the entry threshold, also right
        # after a stop-out while the position would otherwise still be "held".
        pl.Series("entry", (sig == 1) & (pp >= entry_threshold), dtype=pl.Boolean),
    )
    return out.filter(pl.Series(keep))


def entry_threshold_for(settings: Settings, mode: ThresholdMode = "auto") -> float:
    """The live loop's buy threshold: ``auto_threshold`` in auto mode, else ``approval_threshold``."""
    t = settings.trading
    return t.auto_threshold if mode == "auto" else t.approval_threshold


@dataclass(frozen=True)
class MLStrategy:
    """Signals from a fitted model (``models.base.Model``) over ``build_features`` rows, or from
    precomputed ``predictions`` (symbol, session, probability), e.g. a walk-forward run's.
    """

    name: ClassVar[str] = "ml"
    entry_threshold: float = 0.8
    exit_threshold: float = 0.5
    model: Any = dataclasses.field(default=None, compare=False, repr=False)
    feature_settings: FeatureSettings | None = dataclasses.field(default=None, compare=False, repr=False)
    predictions: pl.DataFrame | None = dataclasses.field(default=None, compare=False, repr=False)
    trade_after: dt.date | None = None
    book_rules: BookRules | None = None

    def __post_init__(self) -> None:
        require(
            0 < self.entry_threshold <= 1,
            f"ml.entry_threshold must be in (0, 1], got {self.entry_threshold}",
        )
        require(
            0 <= self.exit_threshold <= self.entry_threshold,
            f"ml.exit_threshold must be in [0, entry_threshold={self.entry_threshold}], "
            f"got {self.exit_threshold}",
        )
        require(
            self.model is not None or self.predictions is not None,
            "ml: needs a fitted model or precomputed predictions (run the walk-forward backtest or retrain)",
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        mode: ThresholdMode = "auto",
        model: Any = None,
        predictions: pl.DataFrame | None = None,
    ) -> MLStrategy:
        """Thresholds from ``settings.trading`` for the given mode."""
        return cls(
            entry_threshold=entry_threshold_for(settings, mode),
            exit_threshold=min(settings.trading.exit_threshold, entry_threshold_for(settings, mode)),
            model=model,
            feature_settings=settings.features,
            predictions=predictions,
        )

    @classmethod
    def topk_from_settings(
        cls, settings: Settings, *, model: Any = None, predictions: pl.DataFrame | None = None
    ) -> MLStrategy:
        """The live loop's top-k book (``settings.portfolio`` and ``settings.risk``)."""
        from stockflow.portfolio import BookRules

        base = cls.from_settings(settings, model=model, predictions=predictions)
        return dataclasses.replace(base, book_rules=BookRules.from_settings(settings))

    def scores(self, bars: pl.DataFrame) -> pl.DataFrame:
        """``symbol, session, score, prob_outperform, expected_excess`` from the model (only after
        ``trade_after`` when set). The score is the model's probability (its ranking) until the model
        gives its own score, expected excess and calibrated probability (issue 9, models side)."""
        probs = self.probabilities(bars)
        if self.trade_after is not None:
            probs = probs.filter(pl.col("session") > self.trade_after)
        cols = probs.columns
        return probs.select(
            "symbol",
            "session",
            (pl.col("score") if "score" in cols else pl.col("probability")).cast(pl.Float64).alias("score"),
            (pl.col("prob_outperform") if "prob_outperform" in cols else pl.col("probability"))
            .cast(pl.Float64)
            .alias("prob_outperform"),
            (pl.col("expected_excess") if "expected_excess" in cols else pl.lit(0.0))
            .cast(pl.Float64)
            .alias("expected_excess"),
        )

    def book_spec(self, bars: pl.DataFrame) -> BookSpec:
        """The top-k book over this strategy's scores, for ``run_backtest(..., book=...)``."""
        from stockflow.backtest.book import BookSpec

        require(self.book_rules is not None, "ml: book_spec needs book_rules (topk_from_settings)")
        assert self.book_rules is not None
        return BookSpec(self.scores(bars), self.book_rules)

    def params(self) -> dict[str, Any]:
        """Thresholds (or the book's rules) and the model kind."""
        if self.book_rules is not None:
            return {
                "portfolio": "top_k",
                **dataclasses.asdict(self.book_rules),
                "trade_after": self.trade_after.isoformat() if self.trade_after else None,
                "model": getattr(self.model, "kind", None) if self.model is not None else "predictions",
            }
        return {
            "entry_threshold": self.entry_threshold,
            "exit_threshold": self.exit_threshold,
            "trade_after": self.trade_after.isoformat() if self.trade_after else None,
            "model": getattr(self.model, "kind", None) if self.model is not None else "predictions",
        }

    def probabilities(self, bars: pl.DataFrame) -> pl.DataFrame:
        """P(up) per (symbol, session) of ``bars`` outside the feature warm-up."""
        if self.predictions is not None:
            return self.predictions.select("symbol", "session", "probability")
        from stockflow.config.sections import FeatureSettings
        from stockflow.features import FEATURE_COLUMNS, build_features

        feats = build_features(bars, self.feature_settings or FeatureSettings())
        rows = feats.filter(~pl.col("warmup"))
        names = list(getattr(self.model, "feature_names", FEATURE_COLUMNS))
        if rows.is_empty():
            return pl.DataFrame(schema={"symbol": pl.Utf8, "session": pl.Date, "probability": pl.Float64})
        X = rows.select(names).to_numpy()
        p = self.model.predict_proba(X, groups=rows.get_column("symbol").to_numpy())
        return rows.select("symbol", "session").with_columns(pl.Series("probability", p, dtype=pl.Float64))

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Signals from the model's probabilities with this strategy's thresholds (only on sessions after
        ``trade_after`` when set); none in top-k mode (the book decides, see :meth:`book_spec`)."""
        if self.book_rules is not None:
            return empty_signals()
        probs = self.probabilities(bars)
        if self.trade_after is not None:
            probs = probs.filter(pl.col("session") > self.trade_after)
        return probabilities_to_signals(probs, self.entry_threshold, self.exit_threshold)


def champion_strategy(
    settings: Settings, engine: Engine, *, mode: ThresholdMode = "auto"
) -> tuple[MLStrategy, dict[str, Any]]:
    """The registry champion as the live top-k strategy that trades only after its training labels end.

    The champion was fitted on data up to ``train_end`` (labels reach ``label_horizon`` bars further):
    backtesting it on that period would be look-ahead, so signals start after ``train_end`` plus the
    horizon (in calendar days, rounded up generously). Raises ``NoChampionError`` without a champion.
    """
    from stockflow.ml.registry import load_champion

    entry, model = load_champion(settings, engine)
    after = None
    if entry.train_end is not None:
        after = entry.train_end + dt.timedelta(days=2 * settings.features.label_horizon + 3)
    strat = MLStrategy.topk_from_settings(settings, model=model)
    strat = dataclasses.replace(strat, trade_after=after)
    info = {**strat.params(), "model_version": entry.version, "model_kind": entry.kind,
            "train_end": entry.train_end.isoformat() if entry.train_end else None}  # fmt: skip
    return strat, info
