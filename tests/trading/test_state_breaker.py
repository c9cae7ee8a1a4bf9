"""Kill switch and daily-loss breaker: persisted state, who/why, and what HALTED does at the broker."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings, RiskSettings
from stockflow.domain.orders import OrderRequest, OrderStatus, TradingState
from stockflow.execution.halt import enforce_halt
from stockflow.execution.reconcile import reconcile
from stockflow.execution.submit import submit_order
from stockflow.risk.breaker import check_daily_loss, daily_loss_exceeded
from stockflow.risk.state import BreakerTrippedError, get_state, reset_breaker, set_state, state_history
from tests.trading.conftest import D0, PRICES, bars_frame


def test_default_is_active_and_changes_are_recorded(engine: Engine) -> None:
    assert get_state(engine).state is TradingState.ACTIVE
    info = set_state(engine, "halted", reason="fat finger at the broker", actor="cli:ana")
    assert (info.state, info.reason, info.set_by) == (
        TradingState.HALTED,
        "fat finger at the broker",
        "cli:ana",
    )
    assert get_state(engine).state is TradingState.HALTED
    set_state(engine, TradingState.REDUCING, reason="winding down", actor="cli:ana")
    [last, first] = state_history(engine)[:2]
    assert (first.state_from, first.state_to, last.state_to) == ("ACTIVE", "HALTED", "REDUCING")
    with pytest.raises(ValueError, match="reason"):
        set_state(engine, "ACTIVE", reason=" ", actor="x")


def test_breaker_trips_on_five_percent_daily_loss_and_stays_until_reset(engine: Engine) -> None:
    s = RiskSettings()
    d1, d2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)
    assert not check_daily_loss(engine, "paper", d1, Decimal(10_000), s).tripped
    assert not check_daily_loss(engine, "paper", d2, Decimal(9_600), s).tripped  # -4% vs yesterday's close
    chk = check_daily_loss(engine, "paper", d2, Decimal(9_499), s)  # -5.01%
    assert chk.tripped and chk.newly_tripped and chk.start_equity == Decimal(10_000)
    st = get_state(engine)
    assert st.state is TradingState.HALTED and st.breaker_tripped and "daily loss" in st.breaker_detail
    # A recovery does not clear it, nor does the kill switch: only a reset by a person.
    assert check_daily_loss(engine, "paper", d2, Decimal(10_500), s).tripped
    with pytest.raises(BreakerTrippedError, match="stockflow state reset"):
        set_state(engine, "ACTIVE", reason="go", actor="cli:bob")
    info = reset_breaker(engine, actor="cli:bob", reason="checked the fills, data glitch")
    assert info.state is TradingState.ACTIVE and not info.breaker_tripped
    ev = state_history(engine)[0]
    assert (ev.kind, ev.actor) == ("reset", "cli:bob") and "data glitch" in ev.reason


def test_daily_loss_rule_is_pure() -> None:
    assert daily_loss_exceeded(100, 95, 0.05)
    assert not daily_loss_exceeded(100, 95.01, 0.05)


def _paper(engine: Engine) -> PaperBroker:
    b = PaperBroker(engine, BrokerSettings(slippage_bps=0))
    b.process_bars(bars_frame(D0, PRICES))
    return b


def _buy(cid: str, sym: str = "AAPL", qty: int = 5) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=sym, side="buy", qty=qty, reference_price=PRICES[sym])


def test_halted_refuses_new_orders_but_lets_cancels_through(sqlite_engine: Engine) -> None:
    b = _paper(sqlite_engine)
    assert submit_order(sqlite_engine, b, _buy("h-1"), run_id="r").outcome == "submitted"
    set_state(sqlite_engine, "HALTED", reason="test", actor="t")
    res = submit_order(sqlite_engine, b, _buy("h-2", "MSFT"), run_id="r")
    assert res.outcome == "refused" and "HALTED" in (res.error or "")
    assert b.get_order_by_client_id("h-2") is None
    report = enforce_halt(sqlite_engine, b, RiskSettings(), run_id="r", session=D0)
    assert [o.client_order_id for o in report.cancelled] == ["h-1"]
    assert b.open_orders() == []
    o = b.get_order_by_client_id("h-1")
    assert o is not None and o.status is OrderStatus.CANCELED


def test_reducing_allows_only_exits(sqlite_engine: Engine) -> None:
    b = _paper(sqlite_engine)
    submit_order(sqlite_engine, b, _buy("r-1"), run_id="r")
    b.process_bars(bars_frame(D0 + dt.timedelta(days=1), PRICES))
    set_state(sqlite_engine, "REDUCING", reason="test", actor="t")
    assert submit_order(sqlite_engine, b, _buy("r-2", "MSFT"), run_id="r").outcome == "refused"
    exit_req = OrderRequest(
        client_order_id="r-3", symbol="AAPL", side="sell", qty=5, reference_price=100, intent="exit"
    )
    assert submit_order(sqlite_engine, b, exit_req, run_id="r").outcome == "submitted"


def test_breaker_with_flatten_sells_everything(sqlite_engine: Engine) -> None:
    b = _paper(sqlite_engine)
    submit_order(sqlite_engine, b, _buy("f-1", qty=50), run_id="r")
    d1 = D0 + dt.timedelta(days=1)
    b.process_bars(bars_frame(d1, PRICES))
    reconcile(sqlite_engine, b, run_id="r")
    s = RiskSettings(flatten_on_halt=True)
    assert not check_daily_loss(sqlite_engine, b.name, d1, b.account().equity, s).tripped
    d2 = d1 + dt.timedelta(days=1)
    b.process_bars(bars_frame(d2, {**PRICES, "AAPL": 85.0}))  # -15% on 5000 of 10000 = -7.5%
    chk = check_daily_loss(sqlite_engine, b.name, d2, b.account().equity, s)
    assert chk.newly_tripped
    rep = enforce_halt(sqlite_engine, b, s, run_id="r2", session=d2)
    assert [r.outcome for r in rep.flattened] == ["submitted"]
    b.process_bars(bars_frame(d2 + dt.timedelta(days=1), {**PRICES, "AAPL": 85.0}))
    assert b.positions() == []
