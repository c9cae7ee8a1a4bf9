"""The reusable quality check: walk-forward IC of a model vs baselines, cross-sectional labels, row caps."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import numpy as np
import polars as pl

from stockflow.config.sections import FeatureSettings
from stockflow.evaluation import add_cross_sectional_label, fit_predict
from stockflow.evaluation.quality import lightgbm_factory, quality_summary, walk_forward_quality
from stockflow.features import build_features


def test_cross_sectional_label_splits_each_session_at_its_median(panel: pl.DataFrame) -> None:
    frame = add_cross_sectional_label(build_features(panel, FeatureSettings()))
    per = (
        frame.filter(pl.col("fwd_ret").is_not_null())
        .group_by("session")
        .agg(pl.col("y_cs_up").sum().alias("up"), pl.len().alias("n"))
    )
    # With 4 symbols and distinct returns, exactly half beat the session median.
    assert (per.filter(pl.col("n") == 4)["up"] == 2).mean() > 0.99  # type: ignore[operator]
    assert frame.filter(pl.col("fwd_ret").is_null())["y_cs_up"].null_count() == frame["fwd_ret"].null_count()


class Recorder:
    """Records what it was trained on."""

    seen: ClassVar[list[tuple[int, float]]] = []

    def fit(self, X: np.ndarray, y: np.ndarray, **_: Any) -> None:
        Recorder.seen.append((X.shape[0], float(y.mean())))

    def predict_proba(self, X: np.ndarray, **_: Any) -> np.ndarray:
        return np.full(X.shape[0], 0.5)


def test_fit_predict_uses_the_chosen_label_and_row_cap(panel: pl.DataFrame) -> None:
    frame = add_cross_sectional_label(build_features(panel, FeatureSettings()).filter(~pl.col("warmup")))
    Recorder.seen.clear()
    fit_predict(Recorder, frame, frame.head(5), train_label="y_cs_up", max_train_rows=1000)
    rows, mean = Recorder.seen[-1]
    assert 1000 <= rows < 1010  # whole latest sessions, at least the cap
    assert abs(mean - 0.5) < 0.03  # the cross-sectional label is balanced by construction


def test_walk_forward_quality_reports_model_control_and_baselines(panel: pl.DataFrame) -> None:
    frame = add_cross_sectional_label(build_features(panel, FeatureSettings()))
    comp = walk_forward_quality(
        frame,
        {"lgbm": lightgbm_factory(num_boost_round=5, num_threads=1, min_data_in_leaf=50)},
        oos_start=dt.date(2011, 1, 1),
        train_days=500,
        test_days=250,
        train_labels={"lgbm": "y_cs_up"},
    )
    # 2011-01-03 .. 2013-03-01 is 543 sessions: three folds of 181 cover it.
    assert len(comp.folds) == 3 and comp.folds[0].test_start >= dt.date(2011, 1, 1)
    assert comp.folds[0].test_start <= dt.date(2011, 1, 10)
    s = quality_summary(comp)
    assert s["n_folds"] == 3
    labelled = comp.predictions.filter((pl.col("model") == "lgbm") & pl.col("y_up").is_not_null()).height
    for name in ("lgbm", "shuffled_control(lgbm)", "momentum", "yesterday", "always_up"):
        assert s[f"{name}.n"] == labelled
    assert s["lgbm.ic_n_sessions"] > 400
