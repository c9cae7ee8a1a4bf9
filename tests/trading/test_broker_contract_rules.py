"""The broker contract, continued: Alpaca's rules a small account meets, run against the paper broker
and against alpaca-py talking to the wire-level fake (issue 10): wash-trade refusal, splits recognised
by reconciliation, cancel-then-filled, and the execution layer's guards on top of them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from stockflow.brokers.ids import client_order_id
from stockflow.domain.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from stockflow.errors import RejectedError
from stockflow.execution import execute_orders, reconcile
from stockflow.execution.order_records import events, ledger_positions
from tests.trading.conftest import D0, Harness


def _buy(cid: str, symbol: str = "AAPL", qty: int = 10, **kw: object) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side="buy",
        qty=qty,
        reference_price=100,
        **kw,  # type: ignore[arg-type]
    )


def _stop(cid: str, qty: int = 10, price: str = "97") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol="AAPL",
        side="sell",
        qty=qty,
        type="stop",
        stop_price=Decimal(price),
        time_in_force=TimeInForce.GTC,
        intent="exit",
    )


def _hold(h: Harness, engine: Engine, qty: int = 10) -> None:
    [res] = execute_orders(engine, h.broker, [_buy("seed-buy", qty=qty)], run_id="seed", session=D0)
    assert res.sent
    h.advance({"AAPL": 100.0})
    reconcile(engine, h.broker, run_id="seed")


def test_an_order_opposite_to_an_open_order_is_a_wash_trade(harness: Harness, sqlite_engine: Engine) -> None:
    _hold(harness, sqlite_engine)
    harness.broker.submit(_stop("w-stop"))
    with pytest.raises(RejectedError, match="wash trade"):
        harness.broker.submit(_buy("w-addon", qty=2))
    assert harness.broker.get_order_by_client_id("w-addon") is None


def test_execution_cancels_our_stop_before_an_add_on_buy(harness: Harness, sqlite_engine: Engine) -> None:
    """Cancel-then-send: the add-on reaches the broker; the stop is placed again by the next run."""
    h, engine = harness, sqlite_engine
    _hold(h, engine)
    [st] = execute_orders(engine, h.broker, [_stop("g-stop")], run_id="r1", session=D0)
    assert st.outcome == "submitted"
    [res] = execute_orders(engine, h.broker, [_buy("g-addon", qty=2)], run_id="r1", session=D0)
    assert res.outcome == "submitted", res.error
    stop = h.broker.get_order_by_client_id("g-stop")
    assert stop is not None and stop.status is OrderStatus.CANCELED
    assert [o.client_order_id for o in h.broker.open_orders()] == ["g-addon"]


def test_execution_refuses_beside_an_outside_opposite_order(harness: Harness, sqlite_engine: Engine) -> None:
    h, engine = harness, sqlite_engine
    _hold(h, engine)
    h.broker.submit(_stop("web-stop"))  # placed by a person (not in our order book)
    [res] = execute_orders(engine, h.broker, [_buy("o-addon", qty=2)], run_id="r1", session=D0)
    assert res.outcome == "refused" and res.error is not None and res.error.startswith("wash_trade:")
    assert h.broker.get_order_by_client_id("o-addon") is None


def test_a_split_is_recognised_by_reconciliation(harness: Harness, sqlite_engine: Engine) -> None:
    h, engine = harness, sqlite_engine
    _hold(h, engine)
    h.split("AAPL", 4)
    [pos] = h.broker.positions()
    assert pos.qty == 40 and pos.avg_entry_price == 25
    report = reconcile(engine, h.broker, run_id="after-split")  # no HaltError
    assert any("4-for-1 split" in a for a in report.adjustments)
    [led] = ledger_positions(engine, h.broker.name)
    assert (led.qty, led.avg_entry_price) == (40, 25)
    assert [e.kind for e in events(engine, run_id="after-split")].count("corporate_action") == 1
    again = reconcile(engine, h.broker, run_id="again")  # applied once
    assert not any("split" in a for a in again.adjustments)
    assert ledger_positions(engine, h.broker.name)[0].qty == 40


def test_a_split_moves_the_stop_into_the_new_price_space(harness: Harness, sqlite_engine: Engine) -> None:
    from stockflow.config.sections import RiskSettings
    from stockflow.execution import manage_stops
    from stockflow.execution.stops import BarRange, broker_stops

    h, engine = harness, sqlite_engine
    _hold(h, engine)
    bar = {"AAPL": BarRange(high=100.0, low=99.0, close=100.0)}
    manage_stops(engine, h.broker, RiskSettings(), run_id="s0", session=h.session, bars=bar)
    assert broker_stops(h.broker) == {"AAPL": Decimal("97.00")}
    h.split("AAPL", 4)
    reconcile(engine, h.broker, run_id="s1")
    bar = {"AAPL": BarRange(high=25.0, low=24.8, close=25.0)}
    [act] = manage_stops(engine, h.broker, RiskSettings(), run_id="s1", session=h.session, bars=bar)
    assert act.action in ("placed", "replaced") and act.qty == 40
    assert broker_stops(h.broker) == {"AAPL": Decimal("24.25")}


def test_a_cancel_that_arrives_after_the_fill_keeps_the_fill(harness: Harness, sqlite_engine: Engine) -> None:
    """Cancel-then-filled: the cancel is quiet, the fill is applied once, ledger equals the broker."""
    h, engine = harness, sqlite_engine
    [res] = execute_orders(engine, h.broker, [_buy("ctf-1", qty=5)], run_id="r", session=D0)
    assert res.order is not None and res.order.broker_order_id
    if h.fake is not None:  # Alpaca: the order is cancelled, then reports the fill it had got
        h.broker.cancel(res.order.broker_order_id)
        h.fake.late_fill(res.order.broker_order_id)
    else:  # paper: the fill happens at the open, the cancel comes after it
        h.advance({"AAPL": 100.0})
        h.broker.cancel(res.order.broker_order_id)
    order = h.broker.get_order(res.order.broker_order_id)
    assert order is not None and order.filled_qty == 5 and not order.is_open
    reconcile(engine, h.broker, run_id="r2")
    reconcile(engine, h.broker, run_id="r3")
    [led] = ledger_positions(engine, h.broker.name)
    assert led.qty == 5 == h.broker.positions()[0].qty


def test_ids_of_a_replaced_intent_differ_and_fit_alpaca() -> None:
    a = client_order_id("r" * 100, D0, "BRK.B", Side.SELL, "stop", intent="10|97.00#0")
    b = client_order_id("r" * 100, D0, "BRK.B", Side.SELL, "stop", intent="10|97.00#1")
    assert a != b and len(a) <= 128 and len(b) <= 128
    assert OrderType.STOP.value in a
