"""Baselines every model is shown beside, and the walk-forward comparison table.

- ``always_up``: predicts up every row, with P(up) = the training up-rate (at least 0.5).
- ``yesterday``: predicts the direction of the last bar's return (``ret_1``).
- ``momentum``: predicts the sign of a lookback return (``ret_20`` by default).
- ``reversal``: the opposite sign of last week's return (``ret_5``): short-term reversal.
- ``shuffled_control``: the model itself trained on labels shuffled across training rows; it has
  nothing to learn, so it must come out at chance (AUC ~ 0.5, IC ~ 0). If it does not, the
  evaluation leaks.

Rule baselines turn their direction into a probability with their own hit rate on the training rows
(h = share of correct directions, at least 0.5): P(up) = h when the rule says up, 1 - h when it says
down, so log loss and Brier score compare fairly. A tie-break of at most 1e-6 that grows with the
signal's strength orders symbols within a session, so their cross-sectional IC is that of the signal
itself, not of a two-valued score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from stockflow.evaluation.metrics import evaluate
from stockflow.evaluation.walkforward import Fold, split
from stockflow.features.spec import FEATURE_COLUMNS

_TIE = 1e-6


class Classifier(Protocol):
    """What the comparison needs of a model (``models.base.Model`` satisfies it)."""

    def fit(self, X: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
        """Train."""
        ...

    def predict_proba(self, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        """P(up) per row."""
        ...


#: A fresh, untrained model per call (one per fold, so folds never share state).
ModelFactory = Callable[[], Classifier]
#: A baseline scores test rows using only training rows.
BaselineFn = Callable[[pl.DataFrame, pl.DataFrame], np.ndarray]


def _rule_proba(train_signal: np.ndarray, train_y: np.ndarray, test_signal: np.ndarray) -> np.ndarray:
    up_train = train_signal > 0
    hit = float((up_train == (train_y == 1)).mean()) if train_y.size else 0.5
    h = min(max(hit, 0.5), 1 - 1e-6)
    sig = np.nan_to_num(test_signal, nan=0.0)
    scale = float(np.nanstd(train_signal)) or 1.0
    p = np.where(sig > 0, h, 1 - h) + _TIE * np.tanh(sig / scale)
    return np.asarray(np.clip(p, 1e-6, 1 - 1e-6))


def _y(frame: pl.DataFrame, column: str = "y_up") -> np.ndarray:
    return frame.get_column(column).cast(pl.Float64).to_numpy()


def add_cross_sectional_label(frame: pl.DataFrame, name: str = "y_cs_up") -> pl.DataFrame:
    """Add a training label: 1 where fwd_ret beats the median fwd_ret of its session, else 0 (null
    without a forward return). It removes the market's common move, which no cross-sectional ranking
    can use, from what a model has to learn."""
    med = pl.col("fwd_ret").median().over("session")
    return frame.with_columns(
        pl.when(pl.col("fwd_ret").is_null())
        .then(None)
        .otherwise((pl.col("fwd_ret") > med).cast(pl.Int8))
        .alias(name)
    )


def always_up(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
    """P(up) = training up-rate (at least 0.5) for every test row."""
    rate = float(np.nanmean(_y(train))) if train.height else 0.5
    return np.full(test.height, min(max(rate, 0.5), 1 - 1e-6))


def yesterday_direction(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
    """Up when the last bar's return (``ret_1``) was positive."""
    return _rule_proba(train["ret_1"].to_numpy(), _y(train), test["ret_1"].to_numpy())


def momentum(column: str = "ret_20") -> BaselineFn:
    """Up when the lookback return ``column`` is positive."""

    def score(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
        return _rule_proba(train[column].to_numpy(), _y(train), test[column].to_numpy())

    return score


def reversal(column: str = "ret_5") -> BaselineFn:
    """Short-term reversal: ranks symbols by minus the lookback return ``column`` (last week's losers
    first), the classic cross-sectional reversal effect."""

    def score(train: pl.DataFrame, test: pl.DataFrame) -> np.ndarray:
        return _rule_proba(-train[column].to_numpy(), _y(train), -test[column].to_numpy())

    return score


def default_baselines(momentum_column: str = "ret_20") -> dict[str, BaselineFn]:
    """The rule baselines of every report, by name."""
    return {
        "always_up": always_up,
        "yesterday": yesterday_direction,
        "momentum": momentum(momentum_column),
        "reversal": reversal(),
    }


def _validation_split(
    train: pl.DataFrame, val_days: int, purge_days: int
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The last ``val_days`` training sessions as validation rows, ``purge_days`` before them dropped."""
    if val_days <= 0:
        return train, None
    days = train.get_column("session").unique().sort()
    if days.len() <= val_days + purge_days + 1:
        return train, None
    val_start = days[-val_days]
    fit_end = days[-(val_days + purge_days + 1)]
    return train.filter(pl.col("session") <= fit_end), train.filter(pl.col("session") >= val_start)


def fit_predict(
    factory: ModelFactory,
    train: pl.DataFrame,
    test: pl.DataFrame,
    *,
    feature_columns: Sequence[str] = FEATURE_COLUMNS,
    val_days: int = 0,
    purge_days: int = 1,
    shuffle_seed: int | None = None,
    train_label: str = "y_up",
    max_train_rows: int | None = None,
) -> np.ndarray:
    """Train a fresh model on ``train`` (optionally with a purged validation tail, optionally on shuffled
    labels) and return P(up) for ``test``. Rows stay ordered by (symbol, session); ``groups`` is the symbol.

    ``train_label`` is the 0/1 column the model learns (e.g. a cross-sectional label from
    :func:`add_cross_sectional_label`); evaluation always uses ``y_up`` and ``fwd_ret``.
    ``max_train_rows`` keeps only the latest sessions' rows up to that many (speed on large panels).
    """
    train = train.filter(pl.col(train_label).is_not_null())
    if max_train_rows is not None and train.height > max_train_rows:
        days = train.get_column("session").sort(descending=True)
        train = train.filter(pl.col("session") >= days[max_train_rows - 1])
    fit_rows, val_rows = _validation_split(train, val_days, purge_days)
    cols = list(feature_columns)
    X = fit_rows.select(cols).to_numpy().astype(np.float64)
    y = _y(fit_rows, train_label).astype(np.int64)
    kwargs: dict[str, Any] = {"groups": fit_rows.get_column("symbol").to_numpy()}
    y_val = None
    if val_rows is not None:
        y_val = _y(val_rows, train_label).astype(np.int64)
        kwargs.update(
            X_val=val_rows.select(cols).to_numpy().astype(np.float64),
            groups_val=val_rows.get_column("symbol").to_numpy(),
        )
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        y = rng.permutation(y)
        if y_val is not None:
            y_val = rng.permutation(y_val)
    if y_val is not None:
        kwargs["y_val"] = y_val
    model = factory()
    model.fit(X, y, **kwargs)
    X_test = test.select(cols).to_numpy().astype(np.float64)
    return np.asarray(
        model.predict_proba(X_test, groups=test.get_column("symbol").to_numpy()), dtype=np.float64
    )


@dataclass(frozen=True)
class Comparison:
    """Out-of-sample predictions of models, baselines and the control on the same folds, and the table."""

    table: pl.DataFrame
    predictions: pl.DataFrame
    folds: list[Fold] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def walk_forward_predictions(
    frame: pl.DataFrame,
    folds: Sequence[Fold],
    models: Mapping[str, ModelFactory],
    *,
    label_horizon: int = 1,
    feature_columns: Sequence[str] = FEATURE_COLUMNS,
    baselines: Mapping[str, BaselineFn] | None = None,
    shuffled_control: str | None = None,
    seed: int = 0,
    val_days: int = 0,
    purge_days: int | None = None,
    train_labels: Mapping[str, str] | None = None,
    max_train_rows: int | None = None,
) -> pl.DataFrame:
    """Long frame (fold, model, kind, symbol, session, p, y_up, fwd_ret) of out-of-sample predictions.

    ``kind`` is "model", "baseline" or "control". ``shuffled_control`` names the entry of ``models`` to
    retrain on shuffled labels (default: the first one; "" for none). ``baselines`` defaults to
    :func:`default_baselines`. ``train_labels`` maps a model name to the label column it trains on
    (default ``y_up``).
    """
    base = default_baselines() if baselines is None else baselines
    control = next(iter(models), None) if shuffled_control is None else (shuffled_control or None)
    purge = label_horizon if purge_days is None else purge_days
    parts: list[pl.DataFrame] = []
    for fold in folds:
        train, test = split(frame, fold, label_horizon)
        if train.is_empty() or test.is_empty():
            continue
        keys = test.select("symbol", "session", "y_up", "fwd_ret").with_columns(
            pl.lit(fold.index).alias("fold")
        )

        def add(name: str, kind: str, p: np.ndarray, keys: pl.DataFrame = keys) -> None:
            parts.append(
                keys.with_columns(pl.lit(name).alias("model"), pl.lit(kind).alias("kind"), pl.Series("p", p))
            )

        labels = dict(train_labels or {})
        common: dict[str, Any] = {
            "feature_columns": feature_columns,
            "val_days": val_days,
            "purge_days": purge,
            "max_train_rows": max_train_rows,
        }
        for name, factory in models.items():
            p = fit_predict(factory, train, test, train_label=labels.get(name, "y_up"), **common)
            add(name, "model", p)
        if control is not None:
            p = fit_predict(
                models[control],
                train,
                test,
                shuffle_seed=seed + fold.index,
                train_label=labels.get(control, "y_up"),
                **common,
            )
            add(f"shuffled_control({control})", "control", p)
        for name, fn in base.items():
            add(name, "baseline", fn(train, test))
    cols = ["fold", "model", "kind", "symbol", "session", "p", "y_up", "fwd_ret"]
    if not parts:
        return pl.DataFrame(
            schema={
                "fold": pl.Int32,
                "model": pl.Utf8,
                "kind": pl.Utf8,
                "symbol": pl.Utf8,
                "session": pl.Date,
                "p": pl.Float64,
                "y_up": pl.Int8,
                "fwd_ret": pl.Float64,
            }
        )
    return pl.concat(parts).select(cols).with_columns(pl.col("fold").cast(pl.Int32))


def model_metrics(
    predictions: pl.DataFrame, *, label_horizon: int = 1, by_fold: bool = False
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate` per model (pooled over folds, or per ``model@fold`` with ``by_fold``)."""
    keys = ["model", "fold"] if by_fold else ["model"]
    out: dict[str, dict[str, Any]] = {}
    for key, g in predictions.group_by(keys, maintain_order=True):
        name = f"{key[0]}@{key[1]}" if by_fold else str(key[0])
        m = evaluate(
            g["y_up"].cast(pl.Float64).to_numpy(),
            g["p"].to_numpy(),
            g["fwd_ret"].to_numpy(),
            g["session"].to_numpy(),
            g["symbol"].to_numpy(),
            label_horizon=label_horizon,
        )
        m["kind"] = g["kind"][0]
        out[name] = m
    return out


TABLE_COLUMNS = (
    "model", "kind", "n", "base_rate", "accuracy", "roc_auc", "log_loss", "brier",
    "ic_mean", "ic_std", "ic_t", "ic_t_every_h", "ic_n_sessions",
)  # fmt: skip


def comparison_table(metrics: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """One row per model/baseline/control with the headline metrics (models first)."""
    order = {"model": 0, "control": 1, "baseline": 2}
    rows = [{c: (name if c == "model" else m.get(c)) for c in TABLE_COLUMNS} for name, m in metrics.items()]
    schema: dict[str, pl.DataType] = {
        c: pl.Utf8() if c in ("model", "kind") else pl.Float64() for c in TABLE_COLUMNS
    }
    schema["n"] = pl.Int64()
    schema["ic_n_sessions"] = pl.Int64()
    table = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return table.sort(pl.col("kind").replace_strict(order, default=3), maintain_order=True)


def compare_with_baselines(
    frame: pl.DataFrame,
    folds: Sequence[Fold],
    models: Mapping[str, ModelFactory],
    *,
    label_horizon: int = 1,
    feature_columns: Sequence[str] = FEATURE_COLUMNS,
    momentum_column: str = "ret_20",
    shuffled_control: str | None = None,
    seed: int = 0,
    val_days: int = 0,
    purge_days: int | None = None,
    train_labels: Mapping[str, str] | None = None,
    max_train_rows: int | None = None,
) -> Comparison:
    """Train each model per fold, score baselines and the shuffled-label control on the same folds, and
    return the comparison table (pooled out-of-sample metrics) with the predictions behind it.
    """
    preds = walk_forward_predictions(
        frame,
        folds,
        models,
        label_horizon=label_horizon,
        feature_columns=feature_columns,
        baselines=default_baselines(momentum_column),
        shuffled_control=shuffled_control,
        seed=seed,
        val_days=val_days,
        purge_days=purge_days,
        train_labels=train_labels,
        max_train_rows=max_train_rows,
    )
    metrics = model_metrics(preds, label_horizon=label_horizon)
    return Comparison(comparison_table(metrics), preds, list(folds), metrics)
