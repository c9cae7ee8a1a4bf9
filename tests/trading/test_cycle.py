"""The trading steps of a run end to end: start of run (bars, reconcile, breaker, stops), risk,
execution; protective stops placed, trailed and honoured; outside activity adopted; unexplained
differences refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.ids import client_order_id
from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings, RiskSettings
from stockflow.domain.orders import OrderRequest, OrderType, TradingState
from stockflow.errors import HaltError
from stockflow.execution import execute_orders, reconcile, start_of_run
from stockflow.execution.order_records import events, ledger_positions, list_orders
from stockflow.risk.decisions import record_decisions
from stockflow.risk.limits import MarketContext, check_orders
from stockflow.risk.state import get_state
from tests.fakes.alpaca_trading import FakeAlpacaTrading
from tests.trading.conftest import D0, PRICES, bars_frame

RISK = RiskSettings(max_position_weight=0.2, max_total_exposure=0.5)


def _day(
    broker: PaperBroker, engine: Engine, session: dt.date, prices: dict[str, float], **kw: dict[str, float]
) -> object:
    bars = bars_frame(session, prices, **kw)
    return start_of_run(engine, broker, RISK, run_id=f"run-{session}", session=session, bars=bars)


def test_a_week_of_runs_with_stops(engine: Engine) -> None:
    b = PaperBroker(engine, BrokerSettings(slippage_bps=0))
    s0 = _day(b, engine, D0, PRICES)
    req = OrderRequest(
        client_order_id=client_order_id("run-d0", D0, "AAPL", "buy"),
        symbol="AAPL",
        side="buy",
        qty=100,
        reference_price=100,
        reason="signal 0.9",
    )
    market = MarketContext(expected_session=D0, latest_sessions={"AAPL": D0}, prices=PRICES)
    [d] = check_orders([req], s0.account, s0.positions, s0.state, RISK, market)  # type: ignore[attr-defined]
    assert (d.reason_code, d.approved_qty) == ("sized_down:max_position_weight", 20)
    record_decisions(engine, "run-d0", [d], session=D0)
    [res] = execute_orders(engine, b, [d.approved], run_id="run-d0", session=D0)  # type: ignore[list-item]
    assert res.outcome == "submitted"

    d1 = D0 + dt.timedelta(days=1)
    s1 = _day(b, engine, d1, {**PRICES, "AAPL": 101.0}, open_={"AAPL": 100.0})
    assert [(p.symbol, p.qty) for p in s1.positions] == [("AAPL", 20)]  # type: ignore[attr-defined]
    [stop] = s1.stops  # type: ignore[attr-defined]
    assert (stop.action, stop.stop_price) == ("placed", Decimal("97.00"))  # 3% below the 100 entry
    [o] = [o for o in b.open_orders() if o.type is OrderType.STOP]
    assert o.stop_price == Decimal("97.00") and o.qty == 20

    d2 = d1 + dt.timedelta(days=1)
    s2 = _day(b, engine, d2, {**PRICES, "AAPL": 106.0}, open_={"AAPL": 101.0})  # +6% high: trail 2%
    [stop2] = s2.stops  # type: ignore[attr-defined]
    assert (stop2.action, stop2.stop_price, stop2.previous_stop) == (
        "replaced",
        Decimal("103.88"),
        Decimal("97.00"),
    )
    assert [o.stop_price for o in b.open_orders()] == [Decimal("103.88")]

    d3 = d2 + dt.timedelta(days=1)
    s3 = _day(b, engine, d3, {**PRICES, "AAPL": 104.0}, open_={"AAPL": 105.0})  # high 105 < 106: kept
    assert [a.action for a in s3.stops] == ["kept"]  # type: ignore[attr-defined]

    d4 = d3 + dt.timedelta(days=1)
    s4 = _day(b, engine, d4, {**PRICES, "AAPL": 100.0}, open_={"AAPL": 104.0}, low={"AAPL": 99.0})
    assert s4.positions == [] and s4.stops == []  # type: ignore[attr-defined]
    assert ledger_positions(engine, "paper") == []
    pnl = s4.account.cash - Decimal(10_000)  # type: ignore[attr-defined]
    assert pnl == Decimal("20") * (Decimal("103.88") - 100)
    kinds = [e.kind for e in events(engine)]
    assert kinds.count("fill_applied") == 2


def test_breaker_trips_at_start_of_run_and_cancels_orders(sqlite_engine: Engine) -> None:
    b = PaperBroker(sqlite_engine, BrokerSettings(slippage_bps=0))
    _day(b, sqlite_engine, D0, PRICES)
    execute_orders(
        sqlite_engine,
        b,
        [OrderRequest(client_order_id="e1", symbol="AAPL", side="buy", qty=60, reference_price=100)],
        run_id="r0",
        session=D0,
    )
    d1 = D0 + dt.timedelta(days=1)
    _day(b, sqlite_engine, d1, PRICES)  # filled at 100; protective stop at 97
    working = OrderRequest(
        client_order_id="e2",
        symbol="MSFT",
        side="buy",
        qty=10,
        type="limit",
        limit_price=40,
        time_in_force="gtc",
        reference_price=50,
    )
    execute_orders(sqlite_engine, b, [working], run_id="r1", session=d1)
    d2 = d1 + dt.timedelta(days=1)
    # AAPL gaps down through the stop: sold at the 90 open, -600 = -6% of equity.
    s2 = _day(b, sqlite_engine, d2, {**PRICES, "AAPL": 90.0}, open_={"AAPL": 90.0})
    assert s2.breaker.newly_tripped and s2.breaker.loss_fraction == Decimal("0.06")  # type: ignore[attr-defined]
    assert get_state(sqlite_engine).state is TradingState.HALTED
    assert [o.client_order_id for o in s2.halt.cancelled] == ["e2"]  # type: ignore[attr-defined]
    assert b.open_orders() == []
    # The next run stays halted: the breaker is not a filter.
    s3 = _day(b, sqlite_engine, d2 + dt.timedelta(days=1), {**PRICES, "AAPL": 120.0})
    assert s3.state.state is TradingState.HALTED and s3.state.breaker_tripped  # type: ignore[attr-defined]


def test_outside_activity_is_adopted_and_recorded(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.outside_order("MSFT", "buy", 3)  # filled in the broker's web UI
    fake_alpaca.outside_order("IBM", "buy", 2, fill=False)  # still working
    rep = reconcile(sqlite_engine, alpaca, run_id="r")
    assert len(rep.fills_applied) == 1 and len(rep.adopted_orders) == 2
    rows = {r.symbol: r for r in list_orders(sqlite_engine)}
    assert rows["MSFT"].origin == "outside" and rows["MSFT"].status == "filled"
    assert rows["IBM"].origin == "outside" and rows["IBM"].status == "new"
    assert [(p.symbol, p.qty) for p in ledger_positions(sqlite_engine, alpaca.name)] == [("MSFT", 3)]
    assert {e.kind for e in events(sqlite_engine)} >= {"adopted_outside_order", "fill_applied"}
    assert reconcile(sqlite_engine, alpaca, run_id="r2").clean


def test_unexplained_position_refuses_to_trade_until_adopted(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.set_position("AAPL", 5, 90.0)  # no fill explains it
    with pytest.raises(HaltError, match=r"position AAPL: the broker holds 5, stockflow's ledger 0"):
        reconcile(sqlite_engine, alpaca, run_id="r")
    assert [e.kind for e in events(sqlite_engine)] == ["mismatch"]
    rep = reconcile(sqlite_engine, alpaca, run_id="r", adopt_unexplained=True, actor="cli:ana")
    assert rep.adjustments == ["AAPL: ledger 0 -> broker 5"]
    assert reconcile(sqlite_engine, alpaca, run_id="r2").clean
