"""The embedded paper broker's simulation: next-bar fills, slippage, commissions, stops with gaps,
limits, expiry, rejections at the fill, and state kept in the database (not in memory)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Engine

from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings
from stockflow.domain.orders import OrderRequest, OrderStatus, TimeInForce
from tests.trading.conftest import D0, PRICES, bars_frame

D1, D2, D3 = (D0 + dt.timedelta(days=i) for i in (1, 2, 3))


def _broker(engine: Engine, **kw: float) -> PaperBroker:
    b = PaperBroker(engine, BrokerSettings(**kw))  # type: ignore[arg-type]
    b.process_bars(bars_frame(D0, PRICES))
    return b


def _buy(cid: str, qty: int = 10, **kw: object) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="AAPL", side="buy", qty=qty, reference_price=100, **kw)  # type: ignore[arg-type]


def test_market_order_fills_at_next_open_with_slippage_and_all_commissions(sqlite_engine: Engine) -> None:
    b = _broker(
        sqlite_engine,
        slippage_bps=10,
        commission_per_share=0.01,
        commission_per_order=1.0,
        commission_pct=0.001,
    )
    b.submit(_buy("m-1"))
    b.process_bars(bars_frame(D1, {"AAPL": 105.0}, open_={"AAPL": 102.0}))
    [f] = b.fills()
    assert f.price == Decimal("102.1020")  # open 102 + 10 bps
    assert f.commission == Decimal("0.10") + Decimal("1.00") + Decimal("1.0210")
    assert b.account().cash == Decimal(10_000) - Decimal("1021.020") - f.commission
    assert b.account().equity == b.account().cash + 10 * Decimal(105)  # marked at the close


def test_orders_placed_after_a_bar_wait_for_the_next_one_and_processing_is_idempotent(
    sqlite_engine: Engine,
) -> None:
    b = _broker(sqlite_engine, slippage_bps=0)
    b.submit(_buy("w-1"))
    assert b.process_bars(bars_frame(D0, PRICES)) == []  # the same bar again: nothing
    frame = bars_frame(D1, PRICES).vstack(bars_frame(D2, {**PRICES, "AAPL": 120.0}))
    fills = b.process_bars(frame)
    assert len(fills) == 1 and fills[0].price == 100  # filled on D1's open, not D2's
    assert b.process_bars(frame) == []
    assert b.last_session == D2


def test_stop_gap_through_fills_at_the_open(sqlite_engine: Engine) -> None:
    b = _broker(sqlite_engine, slippage_bps=0)
    b.submit(_buy("g-1"))
    b.process_bars(bars_frame(D1, PRICES))
    b.submit(
        OrderRequest(
            client_order_id="g-stop",
            symbol="AAPL",
            side="sell",
            qty=10,
            type="stop",
            stop_price=97,
            time_in_force=TimeInForce.GTC,
            intent="exit",
        )
    )
    b.process_bars(bars_frame(D2, {"AAPL": 92.0}, open_={"AAPL": 93.0}))  # opens below the stop
    o = b.get_order_by_client_id("g-stop")
    assert o is not None and o.status is OrderStatus.FILLED and o.avg_fill_price == Decimal(93)


def test_stop_inside_the_range_fills_at_the_stop(sqlite_engine: Engine) -> None:
    b = _broker(sqlite_engine, slippage_bps=0)
    b.submit(_buy("s-1"))
    b.process_bars(bars_frame(D1, PRICES))
    b.submit(
        OrderRequest(
            client_order_id="s-stop",
            symbol="AAPL",
            side="sell",
            qty=10,
            type="stop",
            stop_price=97,
            time_in_force=TimeInForce.GTC,
            intent="exit",
        )
    )
    b.process_bars(bars_frame(D2, {"AAPL": 99.0}, open_={"AAPL": 100.0}, low={"AAPL": 96.0}))
    o = b.get_order_by_client_id("s-stop")
    assert o is not None and o.avg_fill_price == Decimal(97)


def test_day_limit_order_expires_when_not_reached(sqlite_engine: Engine) -> None:
    b = _broker(sqlite_engine, slippage_bps=0)
    b.submit(_buy("l-1", type="limit", limit_price=95))
    b.process_bars(bars_frame(D1, {"AAPL": 99.0}, low={"AAPL": 96.0}))
    o = b.get_order_by_client_id("l-1")
    assert o is not None and o.status is OrderStatus.EXPIRED
    b.submit(_buy("l-2", type="limit", limit_price=95))
    b.process_bars(bars_frame(D2, {"AAPL": 99.0}, open_={"AAPL": 98.0}, low={"AAPL": 94.0}))
    o2 = b.get_order_by_client_id("l-2")
    assert o2 is not None and o2.status is OrderStatus.FILLED and o2.avg_fill_price == 95


def test_buy_that_becomes_unaffordable_at_the_open_is_rejected_at_the_fill(sqlite_engine: Engine) -> None:
    b = _broker(sqlite_engine, slippage_bps=0)
    b.submit(_buy("u-1", qty=99))  # 9900 at the reference price
    b.process_bars(bars_frame(D1, {"AAPL": 110.0}, open_={"AAPL": 110.0}))  # gapped up: 10890 > cash
    o = b.get_order_by_client_id("u-1")
    assert (
        o is not None and o.status is OrderStatus.REJECTED and "insufficient cash" in (o.reject_reason or "")
    )
    assert b.positions() == [] and b.account().cash == 10_000


def test_state_lives_in_the_database(sqlite_engine: Engine) -> None:
    b = _broker(sqlite_engine, slippage_bps=0)
    b.submit(_buy("p-1"))
    b.process_bars(bars_frame(D1, PRICES))
    again = PaperBroker(sqlite_engine, BrokerSettings())  # a new process would see the same
    assert [(p.symbol, p.qty) for p in again.positions()] == [("AAPL", 10)]
    assert again.account().cash == Decimal(9000) and again.last_session == D1
