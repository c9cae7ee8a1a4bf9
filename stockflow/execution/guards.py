"""Checks right before an order is sent, for the rules the broker would otherwise enforce with a 403:

- **wash trades**: Alpaca refuses an order opposite in side to an open order of the same symbol
  ("potential wash trade detected"): a buy while our protective stop-sell rests, an exit sell while a
  buy works. Our own opposite orders are cancelled first (cancel-then-send; a cancelled protective stop
  is placed again by the next run's stop management); an outside one (placed by a person) makes us
  refuse the order, naming it. A resting sell stop is cancelled before a market/limit exit as well (it
  holds the shares the exit sells).
- **pattern day trading**: under ``pdt_min_equity`` an order that would be a 4th day trade in 5
  business days is refused as ``denied:pdt`` (see :mod:`stockflow.risk.pdt`), counted from our ledger.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from sqlalchemy import Engine, select

from stockflow.brokers.base import Broker, MarketClock
from stockflow.db.engine import transaction
from stockflow.db.models_trading import OrderRow
from stockflow.domain.orders import Order, OrderRequest, OrderType, Side
from stockflow.execution.submit import cancel_order
from stockflow.risk.pdt import NEW_YORK, DayTrades, load_day_trades

#: How long a cancel may stay pending (Alpaca's ``pending_cancel``) before we give up on the order.
CANCEL_WAIT_S = 3.0


def trade_date(clock: MarketClock) -> dt.date:
    """The New York date an order sent now fills on: today while open, else the next open (the paper
    broker, between sessions, fills on the weekday after its last session)."""
    if clock.is_open:
        return clock.timestamp.astimezone(NEW_YORK).date()
    if clock.next_open is not None:
        return clock.next_open.astimezone(NEW_YORK).date()
    d = (clock.session or clock.timestamp.astimezone(NEW_YORK).date()) + dt.timedelta(days=1)
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def pdt_state(engine: Engine, broker: Broker) -> DayTrades:
    """Day trades of the window ending on the date orders sent now would fill."""
    return load_day_trades(engine, broker.name, trade_date(broker.clock()))


def conflicts(req: OrderRequest, open_orders: list[Order]) -> list[Order]:
    """Open orders that must go before ``req`` is sent: opposite side in the same symbol (wash trade),
    and for a market/limit exit sell, the resting stop that holds its shares."""
    out = []
    for o in open_orders:
        if o.symbol != req.symbol or not o.is_open:
            continue
        exit_sell = req.intent == "exit" and req.side is Side.SELL and req.type is not OrderType.STOP
        if o.side is not req.side or (exit_sell and o.type is OrderType.STOP):
            out.append(o)
    return out


def clear_conflicts(
    engine: Engine, broker: Broker, req: OrderRequest, open_orders: list[Order], *, run_id: str
) -> str | None:
    """Cancel our conflicting orders (see :func:`conflicts`) and wait until they are final; a refusal
    (``wash_trade: ...``) when one is not ours or does not finish cancelling."""
    todo = conflicts(req, open_orders)
    if not todo:
        return None
    with transaction(engine) as s:
        ours = set(
            s.scalars(
                select(OrderRow.client_order_id).where(
                    OrderRow.client_order_id.in_([o.client_order_id for o in todo]),
                    OrderRow.origin == "stockflow",
                )
            ).all()
        )
    outside = [o for o in todo if o.client_order_id not in ours and o.side is not req.side]
    if outside:
        o = outside[0]
        return (
            f"wash_trade: an outside {o.side.value} order {o.client_order_id} for {o.symbol} is open; "
            f"a {req.side.value} now would be refused by the broker (cancel it first)"
        )
    for o in todo:
        cancel_order(engine, broker, o.client_order_id, run_id=run_id)
    deadline = time.monotonic() + CANCEL_WAIT_S
    for o in todo:
        while True:
            now = broker.get_order(o.broker_order_id) if o.broker_order_id else None
            if now is None or not now.is_open:
                break
            if time.monotonic() > deadline:
                return f"wash_trade: {o.client_order_id} ({o.symbol} {o.side.value}) is still {now.status}"
            time.sleep(0.2)
    return None


def pdt_refusal(
    state: DayTrades | None, req: OrderRequest, equity: Decimal, min_equity: Decimal
) -> str | None:
    """``denied:pdt: ...`` when the order would be a day trade the rule forbids."""
    if state is None or min_equity <= 0:
        return None
    why = state.refusal(req.symbol, req.side, equity, min_equity)
    return None if why is None else f"denied:pdt: {why}"
