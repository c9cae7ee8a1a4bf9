"""ONE contract for every broker adapter: the paper broker and alpaca (real alpaca-py client against the
fake server on loopback) must behave the same for everything the execution layer relies on."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from stockflow.brokers.base import Broker, DuplicateClientOrderIdError
from stockflow.domain.orders import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from stockflow.errors import RejectedError
from stockflow.execution.submit import submit_order
from tests.trading.conftest import Harness


def _req(cid: str, symbol: str = "AAPL", side: str = "buy", qty: int = 10, **kw: object) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        qty=qty,
        reference_price=kw.pop("reference_price", 100),
        **kw,
    )  # type: ignore[arg-type]


def test_it_is_a_broker(harness: Harness) -> None:
    assert isinstance(harness.broker, Broker)
    assert harness.broker.supports_stop_orders


def test_fresh_account(harness: Harness) -> None:
    a = harness.broker.account()
    assert (a.cash, a.equity, a.buying_power) == (Decimal(10_000), Decimal(10_000), Decimal(10_000))
    assert harness.broker.positions() == []
    assert harness.broker.open_orders() == []
    assert harness.broker.fills() == []


def test_submit_then_fill_updates_order_position_cash_and_fills(harness: Harness) -> None:
    b = harness.broker
    ack = b.submit(_req("c-1"))
    assert ack.client_order_id == "c-1" and ack.broker_order_id and ack.status is OrderStatus.NEW
    assert ack.qty == 10 and ack.side is Side.BUY and ack.type is OrderType.MARKET
    assert [o.client_order_id for o in b.open_orders()] == ["c-1"]
    assert b.account().buying_power < Decimal(10_000)  # the open buy holds cash

    harness.advance({"AAPL": 101.0})
    done = b.get_order_by_client_id("c-1")
    assert done is not None and done.status is OrderStatus.FILLED
    assert done.filled_qty == 10 and done.avg_fill_price == Decimal("101")
    assert b.get_order(ack.broker_order_id or "") == done
    assert b.open_orders() == []
    [pos] = b.positions()
    assert (pos.symbol, pos.qty, pos.avg_entry_price) == ("AAPL", Decimal(10), Decimal(101))
    a = b.account()
    assert a.cash == Decimal(10_000 - 1010) and a.equity == Decimal(10_000)
    [f] = b.fills()
    assert (f.broker_order_id, f.symbol, f.side, f.qty, f.price) == (
        ack.broker_order_id,
        "AAPL",
        Side.BUY,
        10,
        101,
    )
    assert f.execution_id
    assert b.fills(since=f.timestamp + dt.timedelta(seconds=1)) == []
    assert b.fills(since=f.timestamp) == [f]


def test_unknown_ids_give_none(harness: Harness) -> None:
    assert harness.broker.get_order_by_client_id("never-sent") is None
    assert harness.broker.get_order(str(uuid.uuid4())) is None


def test_reused_client_order_id_is_a_duplicate_and_creates_nothing(harness: Harness) -> None:
    harness.broker.submit(_req("dup-1"))
    with pytest.raises(DuplicateClientOrderIdError):
        harness.broker.submit(_req("dup-1"))
    assert len(harness.broker.open_orders()) == 1


def test_cancel_open_order_and_cancel_of_final_order_is_quiet(harness: Harness) -> None:
    b = harness.broker
    ack = b.submit(_req("x-1"))
    b.cancel(ack.broker_order_id or "")
    o = b.get_order_by_client_id("x-1")
    assert o is not None and o.status is OrderStatus.CANCELED and o.filled_qty == 0
    b.cancel(ack.broker_order_id or "")  # already final: no error
    harness.advance({"AAPL": 102.0})
    assert b.positions() == []
    assert b.account().cash == Decimal(10_000)


def test_cancel_unknown_order_is_rejected(harness: Harness) -> None:
    with pytest.raises(RejectedError):
        harness.broker.cancel(str(uuid.uuid4()))


def test_unaffordable_buy_is_rejected_and_creates_no_order(harness: Harness) -> None:
    with pytest.raises(RejectedError, match="buying power"):
        harness.broker.submit(_req("big-1", qty=200))  # 200 x 100 > 10k
    assert harness.broker.get_order_by_client_id("big-1") is None


def test_selling_more_than_held_is_rejected(harness: Harness) -> None:
    b = harness.broker
    b.submit(_req("b-1", qty=5))
    harness.advance()
    with pytest.raises(RejectedError, match="qty"):
        b.submit(_req("s-1", side="sell", qty=6))


def test_sell_reduces_position_and_returns_cash(harness: Harness) -> None:
    b = harness.broker
    b.submit(_req("b-1", qty=10))
    harness.advance({"AAPL": 100.0})
    b.submit(_req("s-1", side="sell", qty=4, intent="exit"))
    harness.advance({"AAPL": 110.0})
    [pos] = b.positions()
    assert pos.qty == 6 and pos.avg_entry_price == 100
    assert b.account().cash == Decimal(10_000 - 1000 + 440)
    assert [f.side for f in b.fills()] == [Side.BUY, Side.SELL]


def test_stop_order_rests_then_triggers(harness: Harness) -> None:
    b = harness.broker
    b.submit(_req("b-1", qty=10))
    harness.advance({"AAPL": 100.0})
    stop = OrderRequest(
        client_order_id="st-1",
        symbol="AAPL",
        side="sell",
        qty=10,
        type="stop",
        stop_price=Decimal("97"),
        time_in_force=TimeInForce.GTC,
        intent="exit",
    )
    ack = b.submit(stop)
    assert ack.type is OrderType.STOP and ack.stop_price == 97
    harness.advance({"AAPL": 99.0}, low={"AAPL": 98.0})  # not reached
    assert [o.client_order_id for o in b.open_orders()] == ["st-1"]
    harness.advance({"AAPL": 96.0}, low={"AAPL": 95.0})
    o = b.get_order_by_client_id("st-1")
    assert o is not None and o.status is OrderStatus.FILLED and o.avg_fill_price is not None
    assert o.avg_fill_price <= 97
    assert b.positions() == []


def test_idempotent_resubmit_through_execution_sends_one_order(
    harness: Harness, sqlite_engine: Engine
) -> None:
    req = _req("idem-1", qty=3)
    first = submit_order(sqlite_engine, harness.broker, req, run_id="r1")
    again = submit_order(sqlite_engine, harness.broker, req, run_id="r1")
    assert first.outcome == "submitted" and again.outcome == "already_submitted"
    assert len(harness.broker.open_orders()) == 1
    if harness.fake is not None:
        assert harness.fake.count("POST", "/v2/orders") == 1
