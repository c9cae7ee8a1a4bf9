"""Model quality on a long panel: walk-forward out-of-sample cross-sectional IC against the baselines.

Used by the features benchmark (bench/bench_features.py) and reusable by the retrain flow: any model
factory goes in, a :class:`~stockflow.evaluation.baselines.Comparison` comes out with the model, its
shuffled-label control and the baselines scored on the same folds and rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from stockflow.evaluation.baselines import Comparison, ModelFactory, compare_with_baselines
from stockflow.evaluation.walkforward import folds
from stockflow.features.spec import FEATURE_COLUMNS


class LightGBMClassifier:
    """A plain LightGBM binary classifier behind the comparison's fit/predict_proba protocol (P(up),
    uncalibrated). The models area has the production model; this one is a fixed reference."""

    def __init__(self, **params: Any) -> None:
        self.params = {
            "objective": "binary",
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 1000,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.5,
            "bagging_freq": 1,
            "lambda_l2": 10.0,
            "num_threads": 2,
            "verbose": -1,
            "seed": 0,
            **params,
        }
        self.num_boost_round = int(self.params.pop("num_boost_round", 150))
        self.booster: Any = None

    def fit(self, X: np.ndarray, y: np.ndarray, **_: Any) -> None:
        """Train on all given rows (no early stopping: a fixed, cheap reference)."""
        import lightgbm as lgb

        self.booster = lgb.train(self.params, lgb.Dataset(X, label=y), num_boost_round=self.num_boost_round)

    def predict_proba(self, X: np.ndarray, **_: Any) -> np.ndarray:
        """P(up) per row."""
        return np.asarray(self.booster.predict(X), dtype=np.float64)


def lightgbm_factory(**params: Any) -> ModelFactory:
    """A factory of :class:`LightGBMClassifier` with ``params`` (LightGBM names, plus num_boost_round)."""
    return lambda: LightGBMClassifier(**params)


def walk_forward_quality(
    frame: pl.DataFrame,
    models: Mapping[str, ModelFactory],
    *,
    oos_start: dt.date = dt.date(2005, 1, 1),
    oos_end: dt.date | None = None,
    train_days: int = 756,
    test_days: int = 252,
    label_horizon: int = 1,
    purge_days: int | None = None,
    feature_columns: Sequence[str] = FEATURE_COLUMNS,
    momentum_column: str = "ret_20",
    shuffled_control: str | None = None,
    train_labels: Mapping[str, str] | None = None,
    max_train_rows: int | None = None,
    seed: int = 0,
) -> Comparison:
    """Rolling walk-forward over [oos_start, oos_end]: consecutive test windows of about ``test_days``
    sessions (as many as cover the period), each after a purge of ``purge_days`` (default: the label
    horizon) and a training window of ``train_days`` sessions. Returns the comparison (model,
    shuffled-label control, always-up, yesterday, momentum) with per-session cross-sectional IC and
    its t-statistic.
    """
    if oos_end is not None:
        frame = frame.filter(pl.col("session") <= oos_end)
    sessions = frame.get_column("session").unique().sort()
    n_oos = int((sessions >= oos_start).sum())
    purge = label_horizon if purge_days is None else purge_days
    # Enough folds to cover the whole out-of-sample period, each of about ``test_days`` sessions.
    n_folds = max(math.ceil(n_oos / test_days), 1)
    fs = folds(
        sessions,
        train_days,
        max(n_oos // n_folds, 1),
        purge,
        n_folds,
        expanding=False,
        label_horizon=label_horizon,
    )
    return compare_with_baselines(
        frame,
        fs,
        models,
        label_horizon=label_horizon,
        feature_columns=feature_columns,
        momentum_column=momentum_column,
        shuffled_control=shuffled_control,
        train_labels=train_labels,
        max_train_rows=max_train_rows,
        seed=seed,
        purge_days=purge,
    )


def quality_summary(comparison: Comparison) -> dict[str, Any]:
    """Flat figures per model for benchmark output: IC mean / t / sessions, accuracy, AUC, log loss."""
    out: dict[str, Any] = {}
    if comparison.folds:
        out["oos_first_session"] = comparison.folds[0].test_start.isoformat()
        out["oos_last_session"] = comparison.folds[-1].test_end.isoformat()
        out["n_folds"] = len(comparison.folds)
    for row in comparison.table.iter_rows(named=True):
        name = row["model"]
        for key in ("ic_mean", "ic_t", "ic_n_sessions", "accuracy", "roc_auc", "log_loss", "base_rate", "n"):
            value = row[key]
            out[f"{name}.{key}"] = round(value, 5) if isinstance(value, float) else value
    return out
