"""Walk-forward ML backtest: retrains on schedule and no model sees the period it trades."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
import pytest

from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.engine import run_backtest
from stockflow.backtest.walkforward import walk_forward_predictions
from stockflow.config import Settings, load_settings
from stockflow.errors import ConfigError
from tests.backtest.conftest import random_bars


def small_lightgbm(feature_columns: Sequence[str], settings: Settings):  # type: ignore[no-untyped-def]
    from models.factory import make_model

    return make_model(
        "lightgbm",
        tuple(feature_columns),
        feature_set_version=settings.features.feature_set_version,
        params={"num_boost_round": 15, "min_data_in_leaf": 20, "num_leaves": 7, "num_threads": 1},
    )


@pytest.fixture(scope="module")
def wf_bars() -> pl.DataFrame:
    return random_bars(("AAA", "BBB", "CCC"), 760, seed=3, start=dt.date(2012, 1, 2))


def test_no_fold_sees_the_block_it_trades(wf_bars: pl.DataFrame) -> None:
    s = load_settings(trading={"auto_threshold": 0.52, "approval_threshold": 0.51})
    start, end = dt.date(2014, 3, 3), dt.date(2014, 11, 28)
    wf = walk_forward_predictions(
        wf_bars, s, start=start, end=end, retrain_every=40, train_days=250, purge_days=5, val_days=40,
        model_factory=small_lightgbm,
    )  # fmt: skip
    assert len(wf.folds) >= 4 and wf.model_kind == "lightgbm"
    for prev, f in zip(wf.folds, wf.folds[1:], strict=False):
        assert f.trade_start > prev.trade_end and f.train_end > prev.train_end  # retrained later each time
    for f in wf.folds:
        assert f.train_end < f.label_end < f.trade_start  # labels end before the block starts
        block = wf.predictions.filter(pl.col("fold") == f.index)
        assert block["session"].min() == f.trade_start and block["session"].max() == f.trade_end
    p = wf.predictions
    assert p["session"].min() >= start and p["session"].max() <= end
    assert p.select(pl.len()).item() == p.unique(["symbol", "session"]).height
    res = run_backtest(
        wf_bars, wf.strategy(s).signals(wf_bars), BacktestConfig.from_settings(s), start=start, end=end
    )
    assert res.metrics["n_orders"] >= 0 and res.equity.height > 150


def test_walk_forward_refuses_leaky_or_impossible_settings(wf_bars: pl.DataFrame) -> None:
    s = load_settings()
    with pytest.raises(ConfigError, match=r"purge_days \(0\) must be at least features.label_horizon"):
        walk_forward_predictions(
            wf_bars, s, start=dt.date(2014, 1, 2), end=dt.date(2014, 6, 30), purge_days=0
        )
    from stockflow.errors import DataError

    with pytest.raises(DataError, match="sessions of history before"):
        walk_forward_predictions(
            wf_bars, s, start=dt.date(2012, 3, 1), end=dt.date(2012, 6, 30), train_days=500
        )
