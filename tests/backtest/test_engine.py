"""The engine: next-bar execution, cost arithmetic, shared stop/sizing rules, limits, end of window."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import run_backtest
from stockflow.risk.sizing import position_size
from stockflow.risk.stops import initial_stop, stop_fill_price, update_trailing_stop
from tests.backtest.conftest import bars_from_prices, signal_frame
from tests.helpers import business_days

DAY0 = dt.date(2020, 1, 6)
DAYS = business_days(DAY0, 30)

#: One position of fixed size, no stops, no limits, no costs: the simplest configuration to reason about.
PLAIN = BacktestConfig(
    initial_cash=10_000.0,
    sizing="fixed_notional",
    fixed_notional=1_000.0,
    use_stops=False,
    max_total_exposure=None,
    max_open_positions=None,
)


def flat(p: float) -> tuple[float, float, float, float]:
    return (p, p, p, p)


def test_signal_acts_on_the_next_bar_so_a_same_bar_signal_cannot_profit() -> None:
    # Day 3 jumps from 100 at the open to 110 at the close and stays there. A signal computed from day 3's
    # close would profit only if it could buy at day 3's open (look-ahead).
    rows = [flat(100), flat(100), flat(100), (100, 110, 100, 110), *[flat(110)] * 6]
    bars = bars_from_prices("JMP", rows)
    planted = signal_frame([("JMP", DAYS[i], 1 if i == 3 else 0) for i in range(10)])
    res = run_backtest(bars, planted, PLAIN, benchmarks=False)
    buys = res.fills.filter(pl.col("side") == "buy")
    assert buys.get_column("session").to_list() == [DAYS[4]]
    assert buys.get_column("price").to_list() == [110.0]
    assert res.metrics["final_equity"] == pytest.approx(10_000.0, abs=1e-9)
    # The engine is not blind: the same jump known one bar earlier (a legitimate signal) is captured.
    early = signal_frame([("JMP", DAYS[i], 1 if i == 2 else 0) for i in range(10)])
    res2 = run_backtest(bars, early, PLAIN, benchmarks=False)
    assert res2.fills.filter(pl.col("side") == "buy").get_column("session").to_list() == [DAYS[3]]
    assert res2.metrics["final_equity"] == pytest.approx(10_000.0 + 10 * 10.0)


def test_cost_arithmetic_of_one_round_trip() -> None:
    bars = bars_from_prices("CST", [(10, 10, 10, 10), (10, 11, 10, 11), (12, 12, 12, 12), flat(12)])
    sig = signal_frame([("CST", DAYS[0], 1), ("CST", DAYS[1], 0)])
    costs = Costs(slippage_bps=10, commission_per_share=0.01, commission_per_order=1.0, commission_pct=0.001)
    res = run_backtest(bars, sig, PLAIN.with_costs(costs), benchmarks=False)
    buy_px, sell_px = 10 * 1.001, 12 * 0.999
    comm_in = 1 + 0.01 * 100 + 0.001 * 100 * buy_px
    comm_out = 1 + 0.01 * 100 + 0.001 * 100 * sell_px
    f = res.fills
    assert f.get_column("qty").to_list() == [100.0, 100.0]
    assert f.get_column("price").to_list() == pytest.approx([buy_px, sell_px])
    assert f.get_column("commission").to_list() == pytest.approx([comm_in, comm_out])
    trade = res.trades.row(0, named=True)
    assert trade["pnl"] == pytest.approx(100 * (sell_px - buy_px) - comm_in - comm_out)
    assert trade["exit_reason"] == "signal" and trade["bars_held"] == 1
    assert res.metrics["final_equity"] == pytest.approx(10_000 + trade["pnl"])
    slippage = 100 * (buy_px - 10) + 100 * (12 - sell_px)
    assert res.metrics["costs_paid"] == pytest.approx(comm_in + comm_out + slippage)
    # Without costs the same trade earns exactly 100 x (12 - 10).
    free = run_backtest(bars, sig, PLAIN, benchmarks=False)
    assert free.metrics["final_equity"] == pytest.approx(10_200.0) and free.metrics["costs_paid"] == 0


STOPS = BacktestConfig(
    initial_cash=10_000.0,
    sizing="fixed_notional",
    fixed_notional=1_000.0,
    use_stops=True,
    stop_loss=0.03,
    trailing_stop=0.02,
    trailing_activation=0.05,
    stop_tick=None,
    max_total_exposure=None,
    max_open_positions=None,
)


def _stop_run(rows: list[tuple[float, float, float, float]], config: BacktestConfig = STOPS) -> pl.DataFrame:
    bars = bars_from_prices("STP", rows)
    sig = signal_frame([("STP", DAYS[0], 1)])  # long from day 0, no exit signal afterwards
    return run_backtest(bars, sig, config, benchmarks=False).trades


def test_trailing_stop_uses_the_shared_rules() -> None:
    rows = [flat(100), (100, 101, 99, 100), (100, 106, 100, 105), (105, 105, 103, 104), flat(104)]
    t = _stop_run(rows).row(0, named=True)
    expected_stop = update_trailing_stop(100.0, initial_stop(100.0, 0.03), 106.0, 0.02, 0.05)
    assert expected_stop == pytest.approx(103.88)
    assert t["exit_session"] == DAYS[3] and t["exit_reason"] == "trailing_stop"
    assert t["exit_price"] == pytest.approx(stop_fill_price(expected_stop, 105.0))


def test_stop_gap_fills_at_the_open_and_initial_stop_reason() -> None:
    gap = [flat(100), (100, 101, 99, 100), (100, 106, 100, 105), (102, 102, 101, 101), flat(101)]
    t = _stop_run(gap).row(0, named=True)
    assert t["exit_price"] == pytest.approx(102.0) and t["exit_reason"] == "trailing_stop"
    loss = [flat(100), (100, 101, 99, 100), (99, 99.5, 96, 97), flat(97)]
    t = _stop_run(loss).row(0, named=True)
    assert t["exit_price"] == pytest.approx(stop_fill_price(initial_stop(100.0, 0.03), 99.0))
    assert t["exit_reason"] == "stop" and t["exit_session"] == DAYS[2]


def test_stop_rests_from_the_day_after_entry_and_is_stored_in_cents() -> None:
    # Entry day's low is far below the stop: the live loop places the stop after that close, so it holds.
    rows = [flat(100), (100, 100.5, 90, 100), flat(100), (100, 100, 96.99, 97.5), flat(98)]
    t = _stop_run(rows).row(0, named=True)
    assert t["exit_session"] == DAYS[3] and t["exit_reason"] == "stop"
    # A slipped entry (100.05) gives an initial stop of 97.0485, stored as 97.05 by the live ledger.
    cents = _stop_run(
        rows, BacktestConfig(**{**STOPS.__dict__, "stop_tick": 0.01, "costs": Costs(slippage_bps=5)})
    )
    assert cents.row(0, named=True)["exit_price"] == pytest.approx(97.05 * (1 - 5e-4))


def test_risk_sizing_calls_position_size_within_limits() -> None:
    rows = [flat(50)] * 4
    syms = [f"S{i}" for i in range(8)]
    bars = pl.concat([bars_from_prices(s, rows) for s in syms])
    sig = signal_frame([(s, DAYS[0], 1) for s in syms])
    base = BacktestConfig(initial_cash=10_000.0, max_total_exposure=0.2, max_open_positions=5)
    expected_qty = position_size(10_000.0, 10_000.0, 50.0, initial_stop(50.0, 0.03), 0.02, 0.10)
    assert expected_qty == 20

    def buys(cfg: BacktestConfig) -> pl.DataFrame:
        return run_backtest(bars, sig, cfg, benchmarks=False).fills.filter(pl.col("side") == "buy")

    b = buys(base)
    assert b.height == 2 and b.get_column("qty").to_list() == [20.0, 20.0]  # exposure 20% of 10k
    assert b.get_column("symbol").to_list() == ["S0", "S1"]  # equal strength: ties by symbol
    assert buys(BacktestConfig(**{**base.__dict__, "max_total_exposure": 1.0})).height == 5  # open positions
    assert (
        buys(
            BacktestConfig(**{**base.__dict__, "max_total_exposure": 1.0, "max_orders_per_session": 3})
        ).height
        == 3
    )


def test_entry_the_cash_cannot_pay_at_the_fill_is_rejected() -> None:
    bars = bars_from_prices("GAP", [flat(100), (101, 101, 101, 101), flat(101)])
    sig = signal_frame([("GAP", DAYS[0], 1)])
    cfg = BacktestConfig(**{**PLAIN.__dict__, "fixed_notional": 10_000.0})
    res = run_backtest(bars, sig, cfg, benchmarks=False)
    assert res.fills.is_empty() and res.metrics["final_equity"] == 10_000.0
    ok = run_backtest(
        bars_from_prices("GAP", [flat(100), (99, 99, 99, 99), flat(99)]), sig, cfg, benchmarks=False
    )
    assert ok.fills.filter(pl.col("side") == "buy").get_column("qty").to_list() == [100.0]


def test_open_positions_are_closed_at_the_end_and_gaps_are_handled() -> None:
    a = bars_from_prices("AAA", [flat(10), flat(11), flat(12), flat(13), flat(14)])
    # BBB has no bar on day 2: its exit decided on day 1 waits for day 3's open.
    b = bars_from_prices("BBB", [flat(20), flat(21), flat(22), flat(23), flat(24)]).filter(
        pl.col("session") != DAYS[2]
    )
    sig = signal_frame([("AAA", DAYS[0], 1), ("BBB", DAYS[0], 1), ("BBB", DAYS[1], 0)])
    res = run_backtest(pl.concat([a, b]), sig, PLAIN, benchmarks=False)
    by = {r["symbol"]: r for r in res.trades.iter_rows(named=True)}
    assert by["AAA"]["exit_reason"] == "end" and by["AAA"]["exit_price"] == 14.0
    assert by["BBB"]["exit_session"] == DAYS[3] and by["BBB"]["exit_price"] == 23.0
    eq = res.equity
    assert eq.get_column("n_positions")[-1] == 0
    assert res.metrics["final_equity"] == pytest.approx(10_000 + 100 * (14 - 11) + 50 * (23 - 21))


def test_equity_is_cash_plus_positions_and_result_exports(tmp_path, bars: pl.DataFrame) -> None:
    from stockflow.backtest.strategies import SmaCrossover

    cfg = BacktestConfig(initial_cash=10_000.0, costs=Costs(slippage_bps=5, commission_per_order=1.0))
    res = run_backtest(bars, SmaCrossover(fast=5, slow=20).signals(bars), cfg, strategy="sma")
    eq = res.equity
    assert np.allclose(eq["equity"], eq["cash"] + eq["positions_value"])
    assert (eq["cash"] >= -1e-9).all()
    closed = res.trades.filter(pl.col("exit_session").is_not_null())
    assert closed.height == res.trades.height > 0
    assert res.metrics["final_equity"] == pytest.approx(10_000 + closed["pnl"].sum())
    paths = res.to_csv(tmp_path / "csv")
    assert pl.read_csv(paths["trades"]).height == res.trades.height
    pq = res.export(tmp_path / "pq", "parquet")
    assert pl.read_parquet(pq["equity"]).equals(res.equity)
    assert set(res.benchmarks) == {"buy_and_hold", "equal_weight"}


def test_benchmarks_hand_computed() -> None:
    a = bars_from_prices("AAA", [(10, 10, 10, 10), flat(12), flat(15)])
    b = bars_from_prices("BBB", [(20, 20, 20, 20), flat(18), flat(22)])
    res = run_backtest(pl.concat([a, b]), signal_frame([]), PLAIN)
    bh = res.benchmarks["buy_and_hold"].metrics
    assert bh["final_equity"] == pytest.approx(5_000 * 15 / 10 + 5_000 * 22 / 20)
    ew = res.benchmarks["equal_weight"].equity.get_column("equity").to_list()
    r1 = (12 / 10 - 1 + 18 / 20 - 1) / 2
    r2 = (15 / 12 - 1 + 22 / 18 - 1) / 2
    assert ew == pytest.approx([10_000, 10_000 * (1 + r1), 10_000 * (1 + r1) * (1 + r2)])


def test_zero_trades_have_undefined_trade_metrics(bars: pl.DataFrame) -> None:
    res = run_backtest(bars, signal_frame([]), PLAIN, benchmarks=False)
    m = res.metrics
    assert m["n_trades"] == 0 and m["total_return"] == 0 and math.isnan(m["win_rate"])
