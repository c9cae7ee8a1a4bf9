"""Plain stages of the daily pipeline: session guard, the plan from the target book's orders (risk,
modes), re-validation after an approval, and the clean-up of approvals whose run died."""

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
from stockflow.pipeline.plan import plan_orders, revalidate
from stockflow.pipeline.session import SessionCheck, check_session
from stockflow.pipeline.signals import Signal, book_signals
from stockflow.pipeline.trade_records import (
    abandon_stale_approvals,
    create_approval_request,
    pending_approvals,
    save_signals,
    start_trade_run,
)
from stockflow.portfolio import BookRules, Score, TargetBook, orders_for, target_book
from stockflow.risk.state import StateInfo
from stockflow.store.bars import store_bars

D = dt.date(2012, 3, 30)
SETTINGS = load_settings(
    portfolio={"top_k": 3, "hold_buffer": 0, "approval_band_low": 0.5, "approval_band_high": 0.65},
    risk={"max_position_weight": 0.10, "max_total_exposure": 0.20},
)
PRICES = {"AAA": Decimal(100), "BBB": Decimal(50), "CCC": Decimal(20), "HLD": Decimal(40)}
ACCOUNT = Account(cash=Decimal(9_600), equity=Decimal(10_000), buying_power=Decimal(9_600))
HELD = [Position(symbol="HLD", qty=10, avg_entry_price=40, current_price=40)]


class P:
    def __init__(self, symbol: str, p: float) -> None:
        self.symbol, self.session, self.model_version, self.probability = symbol, D, "v1", p
        self.score, self.prob_outperform, self.expected_excess = p, p, (p - 0.5) / 100


def _state(s: TradingState = TradingState.ACTIVE) -> StateInfo:
    return StateInfo(s, "test", "test", utcnow(), False, "", None)


def _session_check(engine: Engine | None = None) -> SessionCheck:
    latest = {s: D for s in PRICES}
    return SessionCheck(D, latest, tuple(PRICES), {}, True, "ok")


PREDS = [P("AAA", 0.9), P("BBB", 0.7), P("CCC", 0.6), P("HLD", 0.3)]


def _book() -> TargetBook:
    # Equity 10,000; HLD (40 x 10) held and ranked last: it leaves; the top 3 enter at most
    # min(10%, 20% / 3) of equity each, within the 20% exposure (HLD's 400 still counts until it fills).
    return target_book(
        {p.symbol: Score(p.score, p.prob_outperform, p.expected_excess) for p in PREDS},
        {"HLD": 10.0},
        {s: float(v) for s, v in PRICES.items()},
        equity=10_000,
        cash=9_600,
        rules=BookRules.from_settings(SETTINGS),
    )


def _signals() -> list[Signal]:
    return book_signals(_book(), PREDS, D)


def _plan(mode: str = "hybrid", open_orders: list[Order] | None = None):  # type: ignore[no-untyped-def]
    book = _book()
    return plan_orders(
        orders_for(book, {"HLD": 10.0}),
        book_signals(book, PREDS, D),
        book,
        mode=mode,
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
    # The exit (P(outperform) 0.3, outside the band [0.5, 0.65]) trades on its own even though a
    # protective stop rests for the same shares; AAA (0.9) too; BBB... in the band wait for a person.
    assert auto["HLD"].request.intent == "exit" and auto["HLD"].request.qty == 10
    assert "AAA" in auto and "CCC" in approval and "BBB" not in approval
    assert plan.decisions and plan.decisions[0].request.intent == "exit"  # exits first
    aaa = auto["AAA"].proposed
    assert aaa.rank == 1 and aaa.score == pytest.approx(0.9) and aaa.expected_excess == pytest.approx(0.004)
    assert aaa.qty * aaa.reference_price <= 0.20 / 3 * 10_000  # the book's weight cap
    assert aaa.risk_amount == pytest.approx(aaa.qty * 100 * SETTINGS.risk.stop_loss)
    # 20% total exposure with HLD's 400 still counted: entries add at most 1,600.
    placed = [p for p in [*plan.auto, *plan.approval] if p.request.intent == "entry"]
    assert sum(float(p.request.qty * p.request.reference_price) for p in placed) <= 1_600 + 1e-9
    for r in plan.refused:
        assert r.reason_code.startswith("risk:denied:") and r.reason
    routes = {r.signal.symbol: r for r in plan.routed}
    assert set(routes) == {"AAA", "BBB", "CCC", "HLD"}
    # Every order has a deterministic client order id tied to the session.
    again = _plan(open_orders=[resting_stop])
    assert [p.request.client_order_id for p in again.auto] == [p.request.client_order_id for p in plan.auto]


def test_manual_mode_asks_for_every_order_including_exits_in_rank_order() -> None:
    plan = _plan("manual")
    assert plan.auto == () and {p.symbol for p in plan.approval} >= {"HLD", "AAA"}
    ranks = [p.proposed.rank for p in plan.approval]
    assert ranks == sorted(ranks)
    assert _plan("auto").approval == ()


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
    save_signals(engine, run, plan.routed, {p.symbol: p.proposed for p in plan.approval})
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


def test_orders_already_sent_by_an_earlier_run_are_not_counted_as_sent() -> None:
    """Issue 10 defect 4: a re-run of the session finds its orders already submitted (and since
    cancelled); the summary lists them apart, never as "sent"."""
    from stockflow.execution.submit import ExecutionResult
    from stockflow.pipeline.outcomes import TradeSummary, compose_message, order_rows

    plan = _plan("auto")
    req = plan.auto[0].request
    cancelled = Order(
        client_order_id=req.client_order_id, symbol=req.symbol, side=req.side, qty=req.qty,
        type=OrderType.MARKET, status=OrderStatus.CANCELED,
    )  # fmt: skip
    now_sent = plan.auto[1].request
    results = [
        ExecutionResult(req, "already_submitted", order=cancelled),
        ExecutionResult(now_sent, "submitted"),
    ]
    sent, already, _ = order_rows(plan, results)
    assert [r["symbol"] for r in sent] == [now_sent.symbol]
    assert [(r["symbol"], r["status"]) for r in already] == [(req.symbol, "canceled")]
    summary = TradeSummary("auto", 1, None, orders_sent=tuple(sent), orders_already_sent=tuple(already))
    msg = compose_message(summary, choice_note=None)
    assert "1 order(s) sent" in msg and "1 already sent by an earlier run" in msg
