"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stockflow.backtest.metrics import (
    METRIC_DOCS,
    compute_metrics,
    drawdown,
    equity_metrics,
    json_safe,
    trade_metrics,
)


def test_equity_metrics_by_hand() -> None:
    eq = np.array([110.0, 99.0, 108.9, 121.0])
    m = equity_metrics(eq, 100.0)
    r = np.array([0.1, -0.1, 0.1, 121.0 / 108.9 - 1])
    assert m["total_return"] == pytest.approx(0.21)
    assert m["annual_return"] == pytest.approx(1.21 ** (252 / 4) - 1)
    assert m["volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt((0.1**2) / 4)
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert m["max_drawdown_duration"] == 2  # 99 and 108.9 are below the 110 peak; 121 is a new high
    assert m["calmar"] == pytest.approx(m["annual_return"] / (1 - 99 / 110))
    assert drawdown(eq, 100.0).tolist() == pytest.approx([0, 99 / 110 - 1, 108.9 / 110 - 1, 0])


def test_drawdown_counts_the_initial_cash_as_a_peak_and_unrecovered_spells() -> None:
    m = equity_metrics(np.array([95.0, 90.0, 99.0]), 100.0)
    assert m["max_drawdown"] == pytest.approx(-0.10) and m["max_drawdown_duration"] == 3


def test_trade_metrics_by_hand() -> None:
    m = trade_metrics(np.array([10.0, -5.0, 20.0, -5.0, 0.0]))
    assert m["win_rate"] == pytest.approx(2 / 5)
    assert m["profit_factor"] == pytest.approx(30 / 10)
    assert m["avg_win"] == pytest.approx(15) and m["avg_loss"] == pytest.approx(-5)
    assert m["n_trades"] == 5
    assert trade_metrics(np.array([3.0]))["profit_factor"] == math.inf
    assert math.isnan(trade_metrics(np.array([]))["win_rate"])


def test_turnover_exposure_and_order() -> None:
    eq = np.full(252, 100.0)
    m = compute_metrics(
        eq, 100.0, trade_pnl=np.array([]), traded_notional=500.0,
        positions_value=np.full(252, 25.0), n_orders=4, costs_paid=1.5,
    )  # fmt: skip
    assert list(m) == list(METRIC_DOCS)
    assert m["turnover"] == pytest.approx(5.0)  # 500 traded in one year on 100 of equity
    assert m["exposure"] == pytest.approx(0.25)
    assert m["n_orders"] == 4 and m["costs_paid"] == 1.5
    assert math.isnan(m["sharpe"])  # flat equity: no volatility
    assert json_safe(m)["sharpe"] is None and json_safe({"pf": math.inf})["pf"] is None
