"""Property tests of the engine's money arithmetic on random bars, signals and costs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import run_backtest
from tests.backtest.conftest import random_bars

BARS = random_bars(("A", "B", "C", "D"), 80, seed=7, vol=0.03)


def _signals(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    # Sticky random targets with gaps (no opinion) so that positions are held for a while.
    n = BARS.height
    change = rng.random(n) < 0.25
    values = rng.choice([-1, 0, 1], n)
    target = np.where(change, values, 9)
    frame = BARS.select("symbol", "session").with_columns(pl.Series("raw", target))
    frame = frame.with_columns(
        pl.when(pl.col("raw") == 9)
        .then(None)
        .otherwise(pl.col("raw"))
        .forward_fill()
        .over("symbol")
        .alias("signal")
    )
    keep = rng.random(n) > 0.1
    return frame.filter(pl.Series(keep) & pl.col("signal").is_not_null()).select(
        "symbol", "session", pl.col("signal").cast(pl.Int8), pl.lit(rng.random()).alias("strength")
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    slippage_bps=st.floats(0, 50),
    per_order=st.floats(0, 5),
    per_share=st.floats(0, 0.05),
    pct=st.floats(0, 0.005),
    risk=st.booleans(),
    stops=st.booleans(),
)
def test_money_identities(  # noqa: PLR0917 - hypothesis passes the drawn values by name
    seed: int, slippage_bps: float, per_order: float, per_share: float, pct: float, risk: bool, stops: bool
) -> None:
    costs = Costs(slippage_bps, per_share, per_order, pct)
    cfg = BacktestConfig(
        initial_cash=10_000.0,
        costs=costs,
        sizing="risk" if risk else "fixed_notional",
        fixed_notional=None if risk else 1_500.0,
        max_total_exposure=0.6,
        max_open_positions=3,
        use_stops=stops,
    )
    sig = _signals(seed)
    res = run_backtest(BARS, sig, cfg, benchmarks=False)
    eq, fills, trades = res.equity, res.fills, res.trades
    # Cash is never negative and equity is cash plus positions at every close.
    assert (eq["cash"] >= -1e-6).all()
    assert np.allclose(eq["equity"], eq["cash"] + eq["positions_value"])
    # The cash flows of the fills explain the final equity exactly (everything is closed at the end).
    sign = np.where(fills["side"].to_numpy() == "buy", -1.0, 1.0)
    flows = (sign * fills["qty"].to_numpy() * fills["price"].to_numpy()).sum() - fills["commission"].sum()
    assert res.metrics["final_equity"] == pytest.approx(10_000.0 + flows, abs=1e-6)
    assert res.metrics["final_equity"] == pytest.approx(10_000.0 + trades["pnl"].sum(), abs=1e-6)
    assert trades["exit_session"].null_count() == 0
    # Fill prices are the bar's open (or the stop / last close) moved against us by the slippage.
    merged = fills.join(BARS, on=["symbol", "session"])
    buys = merged.filter(pl.col("side") == "buy")
    assert np.allclose(buys["price"], buys["open"] * (1 + slippage_bps / 1e4))
    # Next-bar execution: every buy follows a long signal on the symbol's previous session.
    prev = BARS.select("symbol", "session", pl.col("session").shift(1).over("symbol").alias("prev"))
    chk = (
        buys.select("symbol", "session")
        .join(prev, on=["symbol", "session"])
        .join(sig.rename({"session": "prev"}), on=["symbol", "prev"], how="left")
    )
    assert (chk["signal"] == 1).all()
    # Limits hold at every close.
    assert (eq["n_positions"] <= 3).all()
