"""Strategies: signal rules, no look-ahead (truncation invariance), parameter errors naming the parameter."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import talib

from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import run_backtest
from stockflow.backtest.strategies import (
    BollingerZScore,
    MacdTrend,
    MLStrategy,
    RsiReversion,
    SmaCrossover,
    canonical_name,
    hold_state,
    make_strategy,
    probabilities_to_signals,
)
from stockflow.errors import ConfigError
from tests.backtest.conftest import signal_frame

RULES = [SmaCrossover(5, 20), RsiReversion(), MacdTrend(), BollingerZScore()]


@pytest.mark.parametrize("strategy", RULES, ids=lambda s: s.name)
def test_signals_never_use_later_bars(strategy, bars: pl.DataFrame) -> None:
    full = strategy.signals(bars)
    cut = dt.date(2015, 9, 1)
    early = strategy.signals(bars.filter(pl.col("session") <= cut))
    a = full.filter(pl.col("session") <= cut).sort("symbol", "session")
    assert a.height > 100 and a.equals(early.sort("symbol", "session"))
    assert set(full["signal"].unique().to_list()) <= {-1, 0, 1}
    assert full["strength"].is_between(0, 1).all()


def test_sma_crossover_matches_the_rule(bars: pl.DataFrame) -> None:
    one = bars.filter(pl.col("symbol") == "AAA")
    sig = SmaCrossover(5, 20).signals(one)
    close = one["close"].to_numpy()
    fast, slow = talib.SMA(close, 5), talib.SMA(close, 20)
    want = np.where(fast > slow, 1, -1)[19:]
    assert sig.height == one.height - 19  # warm-up rows carry no opinion
    assert sig["signal"].to_list() == want.tolist()


def test_hold_state_enters_and_leaves() -> None:
    enter = np.array([0, 1, 0, 0, 0, 1, 0], dtype=bool)
    leave = np.array([1, 0, 0, 1, 0, 0, 1], dtype=bool)
    valid = np.array([0, 1, 1, 1, 1, 1, 1], dtype=bool)
    out = hold_state(enter, leave, valid)
    assert np.isnan(out[0]) and out[1:].tolist() == [1, 1, 0, 0, 1, 0]


def test_rsi_holds_from_oversold_until_the_exit_level() -> None:
    rsi = RsiReversion(period=2, lower=30, upper=70, exit_level=50)
    close = np.array([10, 9, 8, 7, 8, 9, 10, 11, 12, 11, 10, 9.0])
    sig, _, entry = rsi.compute(close, close, close, close)
    r = talib.RSI(close, 2)
    assert np.isnan(sig[:2]).all()
    assert entry[2:].tolist() == (r[2:] < 30).tolist()  # a new position opens only when oversold
    for t in range(2, len(close)):
        if r[t] < 30:
            assert sig[t] == 1
        if r[t] > 70:
            assert sig[t] == -1


def test_ml_thresholds_follow_the_live_rules() -> None:
    d = [dt.date(2020, 1, i) for i in range(6, 11)]
    probs = pl.DataFrame({"symbol": ["X"] * 5, "session": d, "probability": [0.6, 0.85, 0.7, 0.45, 0.9]})
    sig = probabilities_to_signals(probs, 0.8, 0.5)
    # flat until p >= 0.8, held while p >= 0.5, exit when p < 0.5, in again at 0.9
    assert sig["signal"].to_list() == [0, 1, 1, 0, 1]
    # opening a position (e.g. again after a stop-out) needs p >= 0.8 itself, as in the live loop
    assert sig["entry"].to_list() == [False, True, False, False, True]
    from stockflow.config import load_settings

    s = load_settings(trading={"auto_threshold": 0.7, "approval_threshold": 0.6})
    assert MLStrategy.from_settings(s, predictions=probs).entry_threshold == 0.7
    assert MLStrategy.from_settings(s, mode="approve_all", predictions=probs).entry_threshold == 0.6


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: SmaCrossover(fast=50, slow=20),
            r"sma_crossover\.fast \(50\) must be smaller than sma_crossover\.slow",
        ),
        (lambda: SmaCrossover(fast=0, slow=20), r"sma_crossover\.fast must be an integer >= 1"),
        (lambda: RsiReversion(lower=-5), r"rsi_reversion\.lower must be between 0 and 100"),
        (lambda: RsiReversion(lower=60, upper=70, exit_level=50), r"lower < exit_level < upper"),
        (lambda: MacdTrend(fast=30, slow=26), r"macd_trend\.fast \(30\) must be smaller"),
        (lambda: BollingerZScore(entry_z=1.0, exit_z=1.5), r"bollinger_zscore\.exit_z must be in"),
        (lambda: make_strategy("sma", fast=5, slow=10, speed=3), r"sma_crossover: unknown parameter"),
        (lambda: canonical_name("moon_phase"), r"strategies: unknown strategy 'moon_phase'"),
        (lambda: Costs(slippage_bps=-1), r"costs\.slippage_bps must be a finite number >= 0"),
        (lambda: Costs(commission_per_order=-0.5), r"costs\.commission_per_order"),
        (lambda: BacktestConfig(initial_cash=0), r"backtest\.initial_cash must be > 0"),
        (lambda: MLStrategy(entry_threshold=0.8), r"ml: needs a fitted model or precomputed predictions"),
    ],
)
def test_bad_parameters_are_named(build, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build()


def test_empty_universe_and_window_without_data(bars: pl.DataFrame) -> None:
    cfg = BacktestConfig()
    with pytest.raises(ConfigError, match="symbols: the universe is empty"):
        run_backtest(bars.head(0), signal_frame([]), cfg)
    with pytest.raises(ConfigError, match=r"start/end: no bars in the window 1990-01-01 \.\. 1990-12-31"):
        run_backtest(bars, signal_frame([]), cfg, start=dt.date(1990, 1, 1), end=dt.date(1990, 12, 31))
    with pytest.raises(ConfigError, match="is after end"):
        run_backtest(bars, signal_frame([]), cfg, start=dt.date(2016, 1, 1), end=dt.date(2015, 1, 1))


def test_defective_bars_are_counted_not_traded(bars: pl.DataFrame) -> None:
    bad = bars.with_columns(
        pl.when((pl.col("symbol") == "AAA") & (pl.col("session") == dt.date(2015, 3, 2)))
        .then(-1.0)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    res = run_backtest(bad, SmaCrossover(5, 20).signals(bad), BacktestConfig())
    assert res.invalid_bars == 1
    assert res.fills.filter(pl.col("price") <= 0).is_empty()
