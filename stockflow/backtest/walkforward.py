"""Walk-forward backtest of the ML strategy: retrain on a schedule inside the window, never on the future.

The window ``start``..``end`` is cut into blocks of ``retrain_every`` sessions (default: the registry's
schedule, ``settings.models.test_window_days``). Before each block a fresh model (LightGBM by default,
built by :func:`models.factory.make_model` with the configured parameters) is fitted on the
``train_days`` sessions that end ``purge_days`` sessions before the block, keeping only rows whose
label (h bars later in the symbol's own series) also ends before the block starts
(:func:`stockflow.evaluation.walkforward.split`). It then predicts the block only. So no model ever
sees a price of the period it trades; each fold records the dates to prove it.

The predictions become signals with the live loop's thresholds (:class:`~.strategies.ml.MLStrategy`)
and run through the same engine as every other strategy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from stockflow.backtest.strategies.ml import MLStrategy, ThresholdMode
from stockflow.errors import ConfigError, DataError
from stockflow.logs import get_logger

if TYPE_CHECKING:
    from models.base import BaseModel
    from stockflow.config import Settings

#: Builds an unfitted model from (feature columns, settings).
ModelFactory = Callable[[Sequence[str], "Settings"], "BaseModel"]


def lightgbm_factory(feature_columns: Sequence[str], settings: Settings) -> BaseModel:
    """The default learner: LightGBM with ``settings.models`` parameters."""
    from models.factory import make_model, params_from_settings

    return make_model(
        "lightgbm",
        tuple(feature_columns),
        feature_set_version=settings.features.feature_set_version,
        params=params_from_settings("lightgbm", settings.models),
    )


@dataclass(frozen=True)
class WalkForwardFold:
    """One retrain: what the model learned from and which sessions it traded."""

    index: int
    train_start: dt.date
    train_end: dt.date
    label_end: dt.date  # latest session whose close entered any training label
    trade_start: dt.date
    trade_end: dt.date
    n_train: int
    n_val: int
    n_predicted: int

    def describe(self) -> dict[str, Any]:
        """Plain data for reports."""
        return {
            "fold": self.index,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "label_end": self.label_end.isoformat(),
            "trade_start": self.trade_start.isoformat(),
            "trade_end": self.trade_end.isoformat(),
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_predicted": self.n_predicted,
        }


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample probabilities of the whole window and the folds that produced them."""

    predictions: pl.DataFrame  # symbol, session, probability, fold
    folds: tuple[WalkForwardFold, ...]
    model_kind: str

    def strategy(self, settings: Settings, mode: ThresholdMode = "auto") -> MLStrategy:
        """The ML strategy over these predictions with the live loop's thresholds."""
        return MLStrategy.from_settings(settings, mode=mode, predictions=self.predictions)


def walk_forward_predictions(
    bars: pl.DataFrame,
    settings: Settings,
    *,
    start: dt.date,
    end: dt.date,
    retrain_every: int | None = None,
    train_days: int | None = None,
    purge_days: int | None = None,
    val_days: int | None = None,
    model_factory: ModelFactory | None = None,
    features: pl.DataFrame | None = None,
) -> WalkForwardResult:
    """Retrain-and-predict over ``start``..``end`` (see the module docstring).

    ``bars`` must include history before ``start`` for the first training window (``train_days``
    sessions plus the feature warm-up). ``features`` may pass a prebuilt ``build_features`` frame.
    """
    from stockflow.evaluation.walkforward import Fold, split
    from stockflow.features import FEATURE_COLUMNS, build_features
    from stockflow.ml.training import predict_rows, validation_split

    ms = settings.models
    h = settings.features.label_horizon
    every = retrain_every if retrain_every is not None else ms.test_window_days
    train_n = train_days if train_days is not None else ms.train_window_days
    purge = purge_days if purge_days is not None else ms.purge_days
    val_n = val_days if val_days is not None else ms.val_days
    for name, v, lo in (("retrain_every", every, 1), ("train_days", train_n, 20), ("purge_days", purge, 0)):
        if v < lo:
            raise ConfigError(f"walk-forward {name} must be >= {lo}, got {v}")
    if purge < h:
        raise ConfigError(
            f"walk-forward purge_days ({purge}) must be at least features.label_horizon ({h}): "
            "otherwise the last training labels use prices of the traded block"
        )
    if start > end:
        raise ConfigError(f"start ({start}) is after end ({end})")
    frame = features if features is not None else build_features(bars, settings.features)
    if frame.is_empty():
        raise DataError("walk-forward: no feature rows (too little history?)", rule="walk_forward")
    days: list[dt.date] = frame.get_column("session").unique().sort().to_list()
    trade_days = [d for d in days if start <= d <= end]
    if not trade_days:
        raise ConfigError(f"start/end: no sessions with features in {start} .. {end}")
    first = days.index(trade_days[0])
    if first - purge < train_n // 4:
        raise DataError(
            f"walk-forward: only {max(first - purge, 0)} sessions of history before {trade_days[0]} "
            f"(train_days={train_n}); load earlier bars",
            rule="walk_forward_history",
        )
    factory = model_factory or lightgbm_factory
    cols = tuple(FEATURE_COLUMNS)
    log = get_logger()
    parts: list[pl.DataFrame] = []
    out_folds: list[WalkForwardFold] = []
    kind = "unknown"
    for k, b0 in enumerate(range(0, len(trade_days), every)):
        block = trade_days[b0 : b0 + every]
        t0 = days.index(block[0])
        train_stop = t0 - purge
        fold = Fold(
            index=k,
            train_sessions=tuple(days[max(train_stop - train_n, 0) : train_stop]),
            test_sessions=tuple(block),
            purge_sessions=tuple(days[train_stop:t0]),
        )
        train, test = split(frame, fold, h)
        if train.is_empty() or test.is_empty():
            log.warning(
                "walk-forward: fold %s (%s..%s) has no training or test rows; skipped", k, block[0], block[-1]
            )
            continue
        train = train.sort(["symbol", "session"])
        test = test.sort(["symbol", "session"])
        fit_rows, val_rows = validation_split(train, val_n, purge)
        model = factory(cols, settings)
        kind = getattr(model, "kind", kind)
        X = fit_rows.select(list(cols)).to_numpy()
        y = fit_rows.get_column("y_up").cast(pl.Int64).to_numpy()
        g = fit_rows.get_column("symbol").to_numpy()
        if val_rows is not None and val_rows.height:
            model.fit(
                X,
                y,
                X_val=val_rows.select(list(cols)).to_numpy(),
                y_val=val_rows.get_column("y_up").cast(pl.Int64).to_numpy(),
                groups=g,
                groups_val=val_rows.get_column("symbol").to_numpy(),
            )
        else:
            model.fit(X, y, groups=g)
        p = predict_rows(model, frame, test, cols)
        parts.append(
            test.select("symbol", "session").with_columns(
                pl.Series("probability", p, dtype=pl.Float64), pl.lit(k, dtype=pl.Int32).alias("fold")
            )
        )
        label_end = _label_end(frame, train, h)
        out_folds.append(
            WalkForwardFold(
                index=k,
                train_start=train.get_column("session").min(),  # type: ignore[arg-type]
                train_end=train.get_column("session").max(),  # type: ignore[arg-type]
                label_end=label_end,
                trade_start=block[0],
                trade_end=block[-1],
                n_train=fit_rows.height,
                n_val=0 if val_rows is None else val_rows.height,
                n_predicted=test.height,
            )
        )
        log.info(
            "walk-forward fold %s: trained on %s..%s (labels to %s), trades %s..%s",
            k, out_folds[-1].train_start, out_folds[-1].train_end, label_end, block[0], block[-1],
        )  # fmt: skip
    if not parts:
        raise DataError("walk-forward: no fold had training and test rows", rule="walk_forward")
    return WalkForwardResult(
        predictions=pl.concat(parts).sort(["symbol", "session"]), folds=tuple(out_folds), model_kind=kind
    )


def _label_end(frame: pl.DataFrame, train: pl.DataFrame, h: int) -> dt.date:
    """The latest session whose close is part of a training label (h bars after a training row)."""
    ends = (
        frame.select("symbol", "session")
        .sort(["symbol", "session"])
        .with_columns(pl.col("session").shift(-h).over("symbol").alias("_end"))
        .join(train.select("symbol", "session"), on=["symbol", "session"], how="semi")
    )
    value = ends.get_column("_end").max()
    assert isinstance(value, dt.date)
    return value
