"""Plain stages of the daily pipeline: session guard, orders from routed signals, re-validation after an
approval, and the clean-up of approvals whose run died."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from sqlalchemy import Engine, select

from stockflow.config import load_settings
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_pipeline import SignalRow
from stockflow.domain.orders import Account, Order, OrderStatus, OrderType, Position, Side, TradingState
from stockflow.pipeline.daily import check_session, plan_orders, revalidate
from stockflow.pipeline.modes import route_signals
from stockflow.pipeline.signals import Signal, make_signals
from stockflow.pipeline.store import (
    abandon_stale_approvals,
    create_approval_request,
    pending_approvals,
    save_signals,
    start_trade_run,
)
from stockflow.risk.state import StateInfo
from stockflow.store.bars import store_bars

D = dt.date(2012, 3, 30)
SETTINGS = load_settings(trading={"auto_threshold": 0.8, "approval_threshold": 0.55})
PRICES = {"AAA": Decimal(100), "BBB": Decimal(50), "CCC": Decimal(20), "HLD": Decimal(40)}
ACCOUNT = Account(cash=Decimal(9_600), equity=Decimal(10_000), buying_power=Decimal(9_600))
HELD = [Position(symbol="HLD", qty=10, avg_entry_price=40, current_price=40)]


class P:
    def __init__(self, symbol: str, p: float) -> None:
        self.symbol, self.session, self.model_version, self.probability = symbol, D, "v1", p


def _state(s: TradingState = TradingState.ACTIVE) -> StateInfo:
    return StateInfo(s, "test", "test", utcnow(), False, "", None)


def _session_check(engine: Engine | None = None):  # type: ignore[no-untyped-def]
    from stockflow.pipeline.daily import SessionCheck

    latest = {s: D for s in PRICES}
    return SessionCheck(D, latest, tuple(PRICES), {}, True, "ok")


def _signals() -> list[Signal]:
    preds = [P("AAA", 0.9), P("BBB", 0.7), P("CCC", 0.6), P("HLD", 0.3)]
    return make_signals(preds, {"HLD": 10}, SETTINGS.trading)


def _plan(mode: str = "hybrid", open_orders: list[Order] | None = None):  # type: ignore[no-untyped-def]
    return plan_orders(
        route_signals(_signals(), mode, SETTINGS.trading),
        settings=SETTINGS,
        account=ACCOUNT,
        positions=HELD,
        open_orders=open_orders or [],
        state=_state(),
        prices=PRICES,
        session_check=_session_check(),
    )


def test_hybrid_plan_routes_sizes_and_refuses_with_reasons() -> None:
    resting_stop = Order(
        client_order_id="stop-hld", symbol="HLD", side=Side.SELL, qty=10, type=OrderType.STOP,
        status=OrderStatus.NEW, stop_price=38,
    )  # fmt: skip
    plan = _plan(open_orders=[resting_stop])
    auto = {p.symbol: p for p in plan.auto}
    approval = {p.symbol: p for p in plan.approval}
    # The exit trades on its own even though a protective stop rests for the same shares.
    assert auto["HLD"].request.intent == "exit" and auto["HLD"].request.qty == 10
    assert "AAA" in auto and set(approval) | {r.symbol for r in plan.refused} == {"BBB", "CCC"}
    aaa = auto["AAA"].proposed
    assert aaa.qty * aaa.reference_price <= 0.10 * 10_000  # max position weight
    assert aaa.risk_amount == pytest.approx(aaa.qty * 100 * SETTINGS.risk.stop_loss)
    # 20% total exposure: after AAA (10%) one more position at most fits.
    placed = [p for p in [*plan.auto, *plan.approval] if p.request.intent == "entry"]
    assert sum(float(p.request.qty * p.request.reference_price) for p in placed) <= 2_000 + 1e-9
    for r in plan.refused:
        assert r.reason_code.startswith("risk:denied:") and r.reason
    # Every order has a deterministic client order id tied to the session.
    again = _plan(open_orders=[resting_stop])
    assert [p.request.client_order_id for p in again.auto] == [p.request.client_order_id for p in plan.auto]


def test_manual_mode_asks_for_every_order_including_exits() -> None:
    plan = _plan("manual")
    assert plan.auto == [] and {p.symbol for p in plan.approval} >= {"HLD", "AAA"}


def _revalidate(plan, **kw):  # type: ignore[no-untyped-def]
    args = {
        "settings": SETTINGS,
        "account": ACCOUNT,
        "positions": HELD,
        "open_orders": [],
        "state": _state(),
        "prices_now": PRICES,
        "clock_session_then": D,
        "clock_session_now": D,
        "session_check": _session_check(),
        "orders_sent": 0,
    }
    args.update(kw)
    return revalidate(plan.approval, **args)


def test_revalidation_after_approval() -> None:
    plan = _plan("manual")
    syms = {p.symbol for p in plan.approval}
    ok, refused = _revalidate(plan)
    assert {p.symbol for p in ok} == syms and refused == []
    # Prices moved more than trading.max_price_move (5%): refused, named.
    moved = {**PRICES, "AAA": Decimal(110)}
    ok, refused = _revalidate(plan, prices_now=moved)
    assert [r.reason_code for r in refused] == ["revalidate:price_moved"]
    assert "AAA" not in {p.symbol for p in ok}
    # Kill switch set while waiting: HALTED sends nothing, REDUCING only the exit.
    ok, refused = _revalidate(plan, state=_state(TradingState.HALTED))
    assert ok == [] and {r.reason_code for r in refused} == {"revalidate:halted"}
    ok, _ = _revalidate(plan, state=_state(TradingState.REDUCING))
    assert [p.symbol for p in ok] == ["HLD"]
    # The market moved on to another session while waiting: nothing is sent.
    ok, refused = _revalidate(plan, clock_session_now=D + dt.timedelta(days=3))
    assert ok == [] and {r.reason_code for r in refused} == {"revalidate:session_changed"}
    # Limits changed (equity fell): an order that would now be sized down is not sent at all.
    poorer = Account(cash=Decimal(4_000), equity=Decimal(4_400), buying_power=Decimal(4_000))
    ok, refused = _revalidate(plan, account=poorer)
    assert "AAA" in {r.symbol for r in refused}
    assert all(r.reason_code.startswith("revalidate:") for r in refused)


def test_session_guard(sqlite_engine: Engine) -> None:
    def bars(sym: str, days: list[dt.date]) -> pl.DataFrame:
        n = len(days)
        one = [1.0] * n
        prices = {c: one for c in ("open", "high", "low", "close", "volume")}
        return pl.DataFrame({"symbol": [sym] * n, "session": days, **prices})

    d0, d1 = dt.date(2013, 2, 28), dt.date(2013, 3, 1)
    with transaction(sqlite_engine) as s:
        store_bars(s, bars("AAA", [d0, d1]), source="sample", ingest_run_id=None)
        store_bars(s, bars("OLD", [d0]), source="sample", ingest_run_id=None)
    now = dt.datetime(2013, 3, 4, 23, tzinfo=dt.UTC)
    sc = check_session(sqlite_engine, ["AAA", "OLD", "NOPE"], source="sample", as_of=None, now=now)
    assert sc.ok and sc.expected == d1 and sc.fresh == ("AAA",)
    assert "expected 2013-03-01" in sc.stale["OLD"] and "no bars" in sc.stale["NOPE"]
    # A replay as of an earlier day reads nothing after it.
    replay = check_session(sqlite_engine, ["AAA", "OLD"], source="sample", as_of=d0, now=now)
    assert replay.fresh == ("AAA", "OLD")
    # A live source expects the last completed session (Monday 2013-03-04 closed at 21:00 UTC).
    live = check_session(sqlite_engine, ["AAA"], source="alpaca", as_of=None, now=now)
    assert not live.ok and live.expected == dt.date(2013, 3, 4) and "stale data" in live.message


def test_stale_approvals_of_dead_runs_are_closed_as_expired(engine: Engine) -> None:
    run = start_trade_run(engine, flow_run_id="dead", mode="manual", signal_source="champion")
    plan = _plan("manual")
    routed = route_signals(_signals(), "manual", SETTINGS.trading)
    save_signals(engine, run, routed, {p.symbol: p.proposed for p in plan.approval})
    past = utcnow() - dt.timedelta(minutes=1)
    create_approval_request(
        engine, trade_run_id=run, flow_run_id="dead", orders=[p.proposed for p in plan.approval],
        plan_hash="h", description="", deadline=past,
    )  # fmt: skip
    assert [p.flow_run_id for p in pending_approvals(engine)] == ["dead"]
    assert len(abandon_stale_approvals(engine)) == 1
    assert pending_approvals(engine) == []
    with transaction(engine) as s:
        statuses = {r.symbol: r.status for r in s.scalars(select(SignalRow))}
    assert {statuses[p.symbol] for p in plan.approval} == {"expired"}
