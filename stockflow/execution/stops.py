"""Protective stops, checked every run: a 3% initial stop, trailing 2% below the high once the position
is 5% in profit (``RiskSettings``), resting at the broker as a GTC sell stop order for the whole
position. The stop level is kept in our ledger (``ledger_positions.stop_price``) and only ever rises.
Brokers without stop orders get a market exit when the latest bar's low reached the stop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine, select

from stockflow.brokers.base import Broker
from stockflow.config.sections import RiskSettings
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import LedgerPosition, OrderRow
from stockflow.domain.orders import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
    to_decimal,
)
from stockflow.execution.intents import intent_order_id
from stockflow.execution.order_records import update_row_from_broker
from stockflow.execution.submit import ExecutionResult, cancel_order, submit_order
from stockflow.risk.state import get_state
from stockflow.risk.stops import initial_stop, update_trailing_stop

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class BarRange:
    """The latest bar's high, low and close for one symbol."""

    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class StopAction:
    """What stop management did for one position."""

    symbol: str
    qty: Decimal
    stop_price: Decimal
    previous_stop: Decimal | None
    action: str  # kept / placed / replaced / exit / skipped:<why> / failed:<outcome>
    result: ExecutionResult | None = None


def manage_stops(
    engine: Engine,
    broker: Broker,
    settings: RiskSettings,
    *,
    run_id: str,
    session: dt.date,
    bars: Mapping[str, BarRange],
) -> list[StopAction]:
    """Update every long position's stop from the latest bar and make the broker's stop order match."""
    state = get_state(engine).state
    open_orders = broker.open_orders()
    _refresh_stale_rows(engine, broker, open_orders)
    actions: list[StopAction] = []
    positions = [p for p in broker.positions() if p.qty > 0]
    held = {p.symbol for p in positions}
    # Stops left over from closed positions would open a short when triggered: cancel them.
    for o in open_orders:
        if o.type is OrderType.STOP and o.side is Side.SELL and o.symbol not in held:
            cancel_order(engine, broker, o.client_order_id, run_id=run_id)
    for p in positions:
        with transaction(engine) as s:
            led = s.scalars(
                select(LedgerPosition).where(
                    LedgerPosition.broker == broker.name, LedgerPosition.symbol == p.symbol
                )
            ).one_or_none()
            entry = (
                float(led.cost_basis / led.qty)
                if led is not None and led.qty > 0
                else float(p.avg_entry_price)
            )
            prev_stop = led.stop_price if led is not None else None
            prev_high = float(led.high_since_entry) if led is not None and led.high_since_entry else entry
            bar = bars.get(p.symbol)
            high = max(prev_high, bar.high) if bar is not None else prev_high
            stop = float(prev_stop) if prev_stop is not None else initial_stop(entry, settings.stop_loss)
            stop = update_trailing_stop(
                entry, stop, high, settings.trailing_stop, settings.trailing_activation
            )
            new_stop = to_decimal(stop).quantize(_CENT)
            if prev_stop is not None and new_stop < prev_stop:
                new_stop = prev_stop  # rounding must never lower a stop
            if led is not None:
                led.high_since_entry, led.stop_price, led.updated_at = to_decimal(high), new_stop, utcnow()
        resting = [
            o
            for o in open_orders
            if o.symbol == p.symbol and o.type is OrderType.STOP and o.side is Side.SELL
        ]
        if not broker.supports_stop_orders:
            if bar is not None and bar.low <= float(new_stop):
                cid = intent_order_id(
                    engine,
                    run_id=run_id,
                    session=session,
                    symbol=p.symbol,
                    side=Side.SELL,
                    purpose="stopexit",
                    content=f"{p.qty}",
                )
                req = OrderRequest(
                    client_order_id=cid,
                    symbol=p.symbol,
                    side=Side.SELL,
                    qty=p.qty,
                    reference_price=bar.close,
                    reason=f"stop {new_stop} reached (low {bar.low})",
                    intent="exit",
                )
                res = submit_order(engine, broker, req, run_id=run_id, session=session)
                actions.append(StopAction(p.symbol, p.qty, new_stop, prev_stop, "exit", res))
            continue
        if len(resting) == 1 and resting[0].stop_price == new_stop and resting[0].qty == p.qty:
            actions.append(StopAction(p.symbol, p.qty, new_stop, prev_stop, "kept"))
            continue
        if state is TradingState.HALTED:
            actions.append(StopAction(p.symbol, p.qty, new_stop, prev_stop, "skipped:halted"))
            continue
        if any(o.symbol == p.symbol and o.side is Side.BUY for o in open_orders):
            # A sell stop beside a working buy is a potential wash trade (Alpaca answers 403): the stop
            # is placed by the next run, once the buy is done.
            actions.append(StopAction(p.symbol, p.qty, new_stop, prev_stop, "skipped:open_buy"))
            continue
        for o in resting:
            cancel_order(engine, broker, o.client_order_id, run_id=run_id)
        # A replacement is a new intent: the id of a cancelled stop is never sent again. An id found
        # already used by an order that is final by now (a crash hid it from us) is used up: once more.
        for _ in range(2):
            res = _send_stop(engine, broker, p.symbol, p.qty, new_stop, run_id, session, bar, entry, high)
            if not (res.outcome == "adopted" and res.order is not None and not res.order.is_open):
                break
        if res.outcome == "submitted" or (res.sent and res.order is not None and res.order.is_open):
            action = "replaced" if resting else "placed"
        else:  # never claim a stop the broker does not hold
            action = f"failed:{res.outcome}"
        actions.append(StopAction(p.symbol, p.qty, new_stop, prev_stop, action, res))
    return actions


def _refresh_stale_rows(engine: Engine, broker: Broker, open_orders: list[Order]) -> None:
    """Our rows that say "working" while the broker no longer lists the order (cancelled by a person,
    by a split, filled) take the broker's status, so that the stop's id is not taken for live."""
    working = {o.client_order_id for o in open_orders}
    with transaction(engine) as s:
        stale = s.scalars(
            select(OrderRow).where(
                OrderRow.broker == broker.name,
                OrderRow.status.in_([OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value]),
                OrderRow.client_order_id.not_in(working),
            )
        ).all()
        cids = [r.client_order_id for r in stale]
    for cid in cids:
        order = broker.get_order_by_client_id(cid)
        if order is None:
            continue
        with transaction(engine) as s:
            row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one()
            update_row_from_broker(row, order)


def _send_stop(  # noqa: PLR0917 (the stop's parts)
    engine: Engine,
    broker: Broker,
    symbol: str,
    qty: Decimal,
    stop: Decimal,
    run_id: str,
    session: dt.date,
    bar: BarRange | None,
    entry: float,
    high: float,
) -> ExecutionResult:
    cid = intent_order_id(
        engine,
        run_id=run_id,
        session=session,
        symbol=symbol,
        side=Side.SELL,
        purpose="stop",
        content=f"{qty}|{stop}",
    )
    req = OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=Side.SELL,
        qty=qty,
        type=OrderType.STOP,
        stop_price=stop,
        time_in_force=TimeInForce.GTC,
        reference_price=bar.close if bar is not None else None,
        reason=f"protective stop (entry {entry:.2f}, high {high:.2f})",
        intent="exit",
    )
    return submit_order(engine, broker, req, run_id=run_id, session=session)


def broker_stops(broker: Broker) -> dict[str, Decimal]:
    """``{symbol: stop price}`` of the protective sell stops the broker holds now (the highest when
    several rest): what a person is shown, not what our ledger intends."""
    out: dict[str, Decimal] = {}
    for o in broker.open_orders():
        if o.type is OrderType.STOP and o.side is Side.SELL and o.stop_price is not None:
            out[o.symbol] = max(out.get(o.symbol, o.stop_price), o.stop_price)
    return out


def bar_ranges(bars: object, session: dt.date) -> dict[str, BarRange]:
    """``{symbol: BarRange}`` from a polars bar frame's rows for ``session``."""
    import polars as pl

    assert isinstance(bars, pl.DataFrame)
    day = bars.filter(pl.col("session") == session)
    return {r["symbol"]: BarRange(r["high"], r["low"], r["close"]) for r in day.iter_rows(named=True)}
