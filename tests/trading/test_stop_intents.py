"""Defect 1 of issue 10: a replaced protective stop must reach the broker under a new client order id
(single-use forever), and what the user is shown is the stop the broker holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from stockflow.brokers.ids import client_order_id
from stockflow.config.sections import RiskSettings
from stockflow.domain.orders import OrderRequest, OrderType, Side
from stockflow.execution import execute_orders, manage_stops
from stockflow.execution.intents import intent_order_id
from stockflow.execution.stops import BarRange, broker_stops
from stockflow.execution.submit import cancel_order
from tests.trading.conftest import D0, Harness

RISK = RiskSettings()


def _hold_aapl(h: Harness, engine: Engine) -> None:
    buy = OrderRequest(
        client_order_id=client_order_id("seed", D0, "AAPL", "buy"),
        symbol="AAPL",
        side="buy",
        qty=10,
        reference_price=100,
    )
    [res] = execute_orders(engine, h.broker, [buy], run_id="seed", session=D0)
    assert res.sent
    h.advance({"AAPL": 100.0})


def _stops(h: Harness) -> list[tuple[str, Decimal | None, Decimal]]:
    return [
        (o.client_order_id, o.stop_price, o.qty)
        for o in h.broker.open_orders()
        if o.type is OrderType.STOP and o.side is Side.SELL
    ]


def test_a_stop_cancelled_then_replaced_in_the_same_run_reaches_the_broker(
    harness: Harness, sqlite_engine: Engine
) -> None:
    """The reported defect: an exit cancelled the stop and did not fill; the same run's stop management
    re-placed the stop under the OLD id, the broker refused it as a duplicate, and the log said placed."""
    h, engine = harness, sqlite_engine
    _hold_aapl(h, engine)
    bars = {"AAPL": BarRange(high=100.0, low=99.0, close=100.0)}
    [first] = manage_stops(engine, h.broker, RISK, run_id="trade-x", session=h.session, bars=bars)
    assert first.action == "placed"
    [(old_id, price, qty)] = _stops(h)
    assert (price, qty) == (Decimal("97.00"), 10)

    cancel_order(engine, h.broker, old_id, run_id="trade-x")  # an exit cancelled it, then did not fill
    assert _stops(h) == []

    [again] = manage_stops(engine, h.broker, RISK, run_id="trade-x", session=h.session, bars=bars)
    assert again.action == "placed"
    [(new_id, price2, qty2)] = _stops(h)  # the broker holds a stop again ...
    assert new_id != old_id and (price2, qty2) == (Decimal("97.00"), 10)  # ... under a new id
    assert broker_stops(h.broker) == {"AAPL": Decimal("97.00")}
    if h.fake is not None:
        assert h.fake.count("POST", "/v2/orders") == 3  # buy, stop, replacement stop


def test_a_trailing_change_is_a_new_intent_and_a_replay_is_not(
    harness: Harness, sqlite_engine: Engine
) -> None:
    h, engine = harness, sqlite_engine
    _hold_aapl(h, engine)
    low = {"AAPL": BarRange(high=100.0, low=99.0, close=100.0)}
    manage_stops(engine, h.broker, RISK, run_id="trade-y", session=h.session, bars=low)
    [(id1, _, _)] = _stops(h)
    [kept] = manage_stops(engine, h.broker, RISK, run_id="trade-y", session=h.session, bars=low)
    assert kept.action == "kept" and [s[0] for s in _stops(h)] == [id1]  # a replay sends nothing
    high = {"AAPL": BarRange(high=106.0, low=104.0, close=106.0)}
    [moved] = manage_stops(engine, h.broker, RISK, run_id="trade-y", session=h.session, bars=high)
    assert moved.action == "replaced" and moved.result is not None and moved.result.outcome == "submitted"
    [(id2, price, _)] = _stops(h)
    assert id2 != id1 and price == Decimal("103.88")


def test_intent_ids_are_deterministic_single_use_and_short(sqlite_engine: Engine) -> None:
    kw = dict(run_id="r" * 200, session=D0, symbol="BRK.B", side=Side.SELL, purpose="stop")
    a = intent_order_id(sqlite_engine, content="10|97.00", **kw)  # type: ignore[arg-type]
    b = intent_order_id(sqlite_engine, content="10|97.00", **kw)  # type: ignore[arg-type]
    c = intent_order_id(sqlite_engine, content="10|98.00", **kw)  # type: ignore[arg-type]
    assert a == b and a != c and len(a) <= 128 and len(c) <= 128


@pytest.mark.parametrize("n", [1, 3])
def test_an_id_used_by_a_final_order_is_never_issued_again(sqlite_engine: Engine, n: int) -> None:
    from stockflow.db.engine import transaction
    from stockflow.domain.orders import OrderStatus
    from stockflow.execution.order_records import new_order_row

    kw = dict(run_id="r", session=D0, symbol="AAPL", side=Side.SELL, purpose="stop", content="10|97")
    seen = set()
    for _ in range(n):
        cid = intent_order_id(sqlite_engine, **kw)  # type: ignore[arg-type]
        assert cid not in seen
        seen.add(cid)
        req = OrderRequest(
            client_order_id=cid, symbol="AAPL", side="sell", qty=10, type="stop", stop_price=97
        )
        with transaction(sqlite_engine) as s:
            s.add(new_order_row(req, broker="paper", run_id="r", session=D0, status=OrderStatus.CANCELED))
    assert len(seen) == n


def test_a_decision_sent_again_after_its_order_died_unfilled_gets_a_new_id(
    harness: Harness, sqlite_engine: Engine
) -> None:
    """An exit that expired (or was cancelled) unfilled, decided again in a second run of the same
    session, reached nobody: the same id was answered ``already_submitted``. A filled one is never
    sent twice."""
    h, engine = harness, sqlite_engine
    _hold_aapl(h, engine)
    day = h.session
    exit_ = OrderRequest(
        client_order_id=client_order_id("trade-z", day, "AAPL", "sell", "exit"),
        symbol="AAPL",
        side="sell",
        qty=10,
        reference_price=100,
        intent="exit",
    )
    [first] = execute_orders(engine, h.broker, [exit_], run_id="trade-z", session=day)
    assert first.outcome == "submitted"
    cancel_order(engine, h.broker, exit_.client_order_id, run_id="trade-z")  # died unfilled
    [again] = execute_orders(engine, h.broker, [exit_], run_id="trade-z", session=day)
    assert again.outcome == "submitted" and again.request.client_order_id != exit_.client_order_id
    h.advance({"AAPL": 101.0})
    [replay] = execute_orders(engine, h.broker, [exit_], run_id="trade-z", session=day)
    assert replay.outcome == "already_submitted"  # the renewed one filled: nothing is sent twice
    from stockflow.execution import reconcile

    reconcile(engine, h.broker, run_id="trade-z")  # our rows now say filled / cancelled
    [after] = execute_orders(engine, h.broker, [exit_], run_id="trade-z", session=day)
    assert (
        after.outcome == "already_submitted"
        and after.request.client_order_id == again.request.client_order_id
    )
    assert h.broker.positions() == []
