"""Walk-forward folds with purge, metrics, IC and baselines on real bars."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from stockflow.config.sections import FeatureSettings
from stockflow.errors import ConfigError, DataError
from stockflow.evaluation import (
    compare_with_baselines,
    evaluate,
    folds,
    hit_rate_by_confidence,
    information_coefficient,
    split,
)
from stockflow.features import FEATURE_COLUMNS, build_features


class Logit:
    """A plain sklearn logistic regression behind the comparison's fit/predict_proba protocol."""

    def __init__(self, columns: list[int] | None = None) -> None:
        self.columns = columns
        self.lr = LogisticRegression(C=0.1, max_iter=300)

    def _x(self, X: np.ndarray) -> np.ndarray:
        return X if self.columns is None else X[:, self.columns]

    def fit(self, X: np.ndarray, y: np.ndarray, **_: Any) -> None:
        self.lr.fit(self._x(X), y)

    def predict_proba(self, X: np.ndarray, **_: Any) -> np.ndarray:
        return np.asarray(self.lr.predict_proba(self._x(X))[:, 1])


def _days(n: int) -> list[dt.date]:
    return [dt.date(2000, 1, 3) + dt.timedelta(days=i) for i in range(n)]


def test_folds_shape_order_and_purge() -> None:
    days = _days(1000)
    fs = folds(days, train_days=500, test_days=100, purge_days=5, n_folds=4)
    assert [len(f.test_sessions) for f in fs] == [100] * 4
    assert fs[-1].test_end == days[-1]
    for a, b in itertools.pairwise(fs):
        assert a.test_end < b.test_start and a.train_start == b.train_start  # expanding
        assert len(b.train_sessions) == len(a.train_sessions) + 100
    for f in fs:
        assert len(f.purge_sessions) == 5
        assert days.index(f.test_start) - days.index(f.train_end) == 6
        assert not set(f.train_sessions) & set(f.test_sessions)
    rolling = folds(days, 500, 100, 5, 4, expanding=False)
    assert all(len(f.train_sessions) == 500 for f in rolling)


def test_folds_refuse_a_purge_shorter_than_the_label_and_too_little_data() -> None:
    with pytest.raises(ConfigError, match="label horizon"):
        folds(_days(1000), 500, 100, 2, 4, label_horizon=5)
    with pytest.raises(DataError, match="cannot hold one"):
        folds(_days(100), 500, 100, 5, 4)
    # Room for two folds only: the two latest are returned.
    assert len(folds(_days(710), 500, 100, 5, 4)) == 2


@pytest.mark.parametrize("horizon", [1, 5])
def test_no_training_label_reaches_into_the_test_period(panel: pl.DataFrame, horizon: int) -> None:
    days = panel["session"].unique().sort()
    fs = folds(days, 1500, 100, horizon, 4, label_horizon=horizon)
    # A gap in IBM's bars across the first fold's purge: its h-bar label then spans more panel sessions
    # than the purge does.
    first = days.to_list().index(fs[0].test_start)
    lo, hi = days[first - horizon - 3], days[first + 5]
    gap = panel.filter(~((pl.col("symbol") == "IBM") & pl.col("session").is_between(lo, hi)))
    frame = build_features(gap, FeatureSettings(label_horizon=horizon))
    # Session of the bar each label ends on, from the bars themselves.
    ends = gap.select(
        "symbol", "session", pl.col("session").shift(-horizon).over("symbol").alias("label_end")
    )
    for f in fs:
        train, test = split(frame, f, horizon)
        assert train.height > 0 and test.height > 0
        train_ends = train.join(ends, on=["symbol", "session"])["label_end"]
        assert train_ends.null_count() == 0
        assert train_ends.max() < f.test_start  # type: ignore[operator]
        assert not train["warmup"].any() and not test["warmup"].any()
    # The guard matters: by session alone, IBM's last row before the gap would leak into a test window.
    naive = frame.filter(pl.col("session").is_in(list(fs[0].train_sessions)) & pl.col("y_up").is_not_null())
    assert naive.join(ends, on=["symbol", "session"])["label_end"].max() >= fs[0].test_start  # type: ignore[operator]


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(float)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 500), 0.01, 0.99)
    sessions = np.repeat(np.arange(100), 5)
    fwd = (y - 0.5) * rng.uniform(0.01, 0.02, 500)
    m = evaluate(y, p, fwd, sessions, np.tile(list("abcde"), 100))
    assert m["accuracy"] == pytest.approx(((p >= 0.5) == (y == 1)).mean())
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["brier"] == pytest.approx(((p - y) ** 2).mean())
    assert sum(b["n"] for b in m["hit_rate_by_confidence"]) == 500
    assert m["n_symbols"] == 5 and m["ic_n_sessions"] == 100 and m["ic_mean"] > 0.3


def test_information_coefficient_signs_and_undefined_cases() -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(size=400)
    sessions = np.repeat(np.arange(40), 10)
    assert information_coefficient(r, r, sessions)["ic_mean"] == pytest.approx(1.0)
    assert information_coefficient(-r, r, sessions)["ic_mean"] == pytest.approx(-1.0)
    constant = information_coefficient(np.full(400, 0.6), r, sessions)
    assert constant["ic_n_sessions"] == 0 and constant["ic_mean"] is None
    noise = information_coefficient(rng.normal(size=400), r, sessions)
    assert abs(noise["ic_t"]) < 4
    assert information_coefficient(r[:2], r[:2], np.array([0, 0]))["ic_n_sessions"] == 0  # < 3 symbols


def test_hit_rate_buckets() -> None:
    rows = hit_rate_by_confidence(np.array([1, 0, 1, 1]), np.array([0.505, 0.495, 0.7, 0.2]))
    assert [r["n"] for r in rows] == [2, 0, 0, 0, 2]
    assert rows[0]["hit_rate"] == 1.0 and rows[-1]["hit_rate"] == 0.5


def test_comparison_table_with_baselines_and_shuffled_control(panel: pl.DataFrame) -> None:
    frame = build_features(panel, FeatureSettings(label_horizon=1))
    # A cheat model sees the label through fwd_ret: the comparison must show skill where there is some.
    # The shuffled control of the real-feature model must come out at chance.
    cheat = frame.with_columns((pl.col("fwd_ret").fill_null(0.0) * 100).alias("peek"))
    cols = [*FEATURE_COLUMNS, "peek"]
    fs = folds(frame["session"].unique(), 1000, 250, 1, 4)
    comp = compare_with_baselines(
        cheat,
        fs,
        {"logit": Logit, "cheat": lambda: Logit([len(cols) - 1])},
        feature_columns=cols,
        shuffled_control="logit",
        seed=3,
    )
    t = {r["model"]: r for r in comp.table.iter_rows(named=True)}
    assert list(comp.table["kind"].unique(maintain_order=True)) == ["model", "control", "baseline"]
    assert set(t) == {"logit", "cheat", "shuffled_control(logit)", "always_up", "yesterday", "momentum",
                      "reversal"}  # fmt: skip
    assert t["cheat"]["accuracy"] > 0.95 and t["cheat"]["ic_mean"] > 0.8
    control = t["shuffled_control(logit)"]
    assert abs(control["roc_auc"] - 0.5) < 0.05 and abs(control["ic_t"] or 0) < 3
    n = t["always_up"]["n"]
    assert all(r["n"] == n for r in t.values())  # same rows for everyone
    assert t["always_up"]["accuracy"] == pytest.approx(
        comp.predictions.filter(pl.col("model") == "always_up")["y_up"].mean()
    )
    assert t["always_up"]["ic_mean"] is None  # a constant has no cross-sectional order
    assert t["momentum"]["ic_n_sessions"] > 900
