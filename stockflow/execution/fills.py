"""Applying fills to our ledger exactly once, keyed by (broker, execution id)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stockflow.brokers.base import Broker
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import FillRow, LedgerPosition, OrderRow
from stockflow.domain.orders import ZERO, Book, Fill, OrderStatus, Side, apply_fill
from stockflow.execution.order_records import outside_order_row, record_event

#: Fills are fetched again from this long before the newest one applied: late reports are not missed,
#: and re-fetched ones are skipped by execution id.
REFETCH_MARGIN = dt.timedelta(days=1)


def _ledger(s: Session, broker: str, symbol: str) -> LedgerPosition:
    row = s.scalars(
        select(LedgerPosition).where(LedgerPosition.broker == broker, LedgerPosition.symbol == symbol)
    ).one_or_none()
    if row is None:
        row = LedgerPosition(
            broker=broker,
            symbol=symbol,
            qty=ZERO,
            cost_basis=ZERO,
            realized_pnl=ZERO,
            commissions=ZERO,
            updated_at=utcnow(),
        )
        s.add(row)
        s.flush()
    return row


def _apply_one(s: Session, broker: str, fill: Fill) -> bool:
    exists = s.scalars(
        select(FillRow.id).where(FillRow.broker == broker, FillRow.execution_id == fill.execution_id)
    ).first()
    if exists is not None:
        return False
    order = s.scalars(
        select(OrderRow).where(OrderRow.broker == broker, OrderRow.broker_order_id == fill.broker_order_id)
    ).first()
    if order is None and fill.client_order_id:
        order = s.scalars(select(OrderRow).where(OrderRow.client_order_id == fill.client_order_id)).first()
    try:
        with s.begin_nested():
            s.add(
                FillRow(
                    broker=broker,
                    execution_id=fill.execution_id,
                    broker_order_id=fill.broker_order_id,
                    client_order_id=fill.client_order_id or (order.client_order_id if order else None),
                    symbol=fill.symbol,
                    side=fill.side.value,
                    qty=fill.qty,
                    price=fill.price,
                    commission=fill.commission,
                    filled_at=fill.timestamp,
                    applied_at=utcnow(),
                )
            )
    except IntegrityError:
        return False  # applied concurrently
    led = _ledger(s, broker, fill.symbol)
    before = led.qty
    book = apply_fill(
        Book(
            qty=led.qty, cost_basis=led.cost_basis, realized_pnl=led.realized_pnl, commissions=led.commissions
        ),
        fill.side,
        fill.qty,
        fill.price,
        fill.commission,
    )
    led.qty, led.cost_basis, led.realized_pnl, led.commissions = (
        book.qty,
        book.cost_basis,
        book.realized_pnl,
        book.commissions,
    )
    if before == 0 or (before > 0) != (book.qty > 0) or book.qty == 0:
        # Opened, closed or flipped: the protective stop starts over.
        led.opened_at = fill.timestamp if book.qty != 0 else None
        led.high_since_entry, led.stop_price = None, None
    led.updated_at = utcnow()
    if order is not None:
        total = s.scalars(
            select(func.count())
            .select_from(FillRow)
            .where(FillRow.broker == broker, FillRow.broker_order_id == fill.broker_order_id)
        ).one()
        prev_qty = order.filled_qty if total > 1 else ZERO
        if fill.qty + prev_qty > order.filled_qty:  # the broker's order status may already be ahead
            order.avg_fill_price = (
                fill.price
                if prev_qty == 0 or order.avg_fill_price is None
                else ((order.avg_fill_price * prev_qty + fill.price * fill.qty) / (prev_qty + fill.qty))
            )
            order.filled_qty = prev_qty + fill.qty
            if order.filled_qty >= order.qty:
                order.status = OrderStatus.FILLED.value
            elif order.status in (
                OrderStatus.NEW.value,
                OrderStatus.PENDING_SUBMIT.value,
                OrderStatus.UNKNOWN.value,
            ):
                order.status = OrderStatus.PARTIALLY_FILLED.value
        if order.broker_order_id is None:
            order.broker_order_id = fill.broker_order_id
        order.updated_at = utcnow()
    return True


def apply_fills(
    engine: Engine, broker: str, fills: Iterable[Fill], *, run_id: str | None = None
) -> list[Fill]:
    """Apply fills not applied before (by execution id) to the ledger and our orders, in one
    transaction; returns the ones applied now."""
    applied: list[Fill] = []
    with transaction(engine) as s:
        for f in sorted(fills, key=lambda f: (f.timestamp, f.execution_id)):
            if _apply_one(s, broker, f):
                applied.append(f)
                record_event(
                    s,
                    broker=broker,
                    run_id=run_id,
                    kind="fill_applied",
                    symbol=f.symbol,
                    client_order_id=f.client_order_id,
                    execution_id=f.execution_id,
                    side=f.side.value,
                    qty=f.qty,
                    price=f.price,
                )
    return applied


def ledger_fills(engine: Engine, broker: str, since: dt.datetime | None = None) -> list[Fill]:
    """The fills applied to our ledger for ``broker`` (at or after ``since``), oldest first: what the
    snapshot reads instead of asking the broker for its whole fill history every run."""
    with transaction(engine) as s:
        stmt = select(FillRow).where(FillRow.broker == broker)
        if since is not None:
            stmt = stmt.where(FillRow.filled_at >= since)
        return [
            Fill(
                execution_id=r.execution_id,
                broker_order_id=r.broker_order_id,
                client_order_id=r.client_order_id,
                symbol=r.symbol,
                side=Side(r.side),
                qty=r.qty,
                price=r.price,
                commission=r.commission,
                timestamp=r.filled_at,
            )
            for r in s.scalars(stmt.order_by(FillRow.filled_at, FillRow.execution_id))
        ]


def last_fill_time(engine: Engine, broker: str) -> dt.datetime | None:
    """Timestamp of the newest fill applied for ``broker``."""
    with transaction(engine) as s:
        return s.scalars(select(func.max(FillRow.filled_at)).where(FillRow.broker == broker)).one()


def sync_fills_adopting(
    engine: Engine, broker: Broker, *, run_id: str | None = None
) -> tuple[list[Fill], list[str]]:
    """Fetch the broker's recent fills, adopt the orders behind fills we did not place (recording
    them), and apply the new fills once. Returns the fills applied now and the client ids of the
    outside orders adopted."""
    last = last_fill_time(engine, broker.name)
    fills = broker.fills(None if last is None else last - REFETCH_MARGIN)
    adopted: list[str] = []
    if not fills:
        return [], adopted
    with transaction(engine) as s:
        known_ids = set(
            s.scalars(
                select(FillRow.execution_id).where(
                    FillRow.broker == broker.name, FillRow.execution_id.in_([f.execution_id for f in fills])
                )
            ).all()
        )
        new = [f for f in fills if f.execution_id not in known_ids]
        unknown_orders = {f.broker_order_id for f in new} - set(
            s.scalars(
                select(OrderRow.broker_order_id).where(
                    OrderRow.broker == broker.name,
                    OrderRow.broker_order_id.in_([f.broker_order_id for f in new]),
                )
            ).all()
        )
    for oid in sorted(unknown_orders):
        order = broker.get_order(oid)
        if order is None:
            continue
        with transaction(engine) as s:
            row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == order.client_order_id)).first()
            if row is not None:  # ours, but the acknowledgement was lost (crash after the POST)
                row.broker_order_id = order.broker_order_id
                record_event(
                    s,
                    broker=broker.name,
                    run_id=run_id,
                    kind="order_acknowledged_late",
                    symbol=order.symbol,
                    client_order_id=order.client_order_id,
                    broker_order_id=order.broker_order_id,
                    status=order.status.value,
                )
                continue
            s.add(outside_order_row(order, broker=broker.name, run_id=run_id))
            adopted.append(order.client_order_id)
            record_event(
                s,
                broker=broker.name,
                run_id=run_id,
                kind="adopted_outside_order",
                symbol=order.symbol,
                client_order_id=order.client_order_id,
                broker_order_id=order.broker_order_id,
                side=order.side.value,
                qty=order.qty,
                status=order.status.value,
            )
    return apply_fills(engine, broker.name, new, run_id=run_id), adopted


def sync_fills(engine: Engine, broker: Broker, *, run_id: str | None = None) -> list[Fill]:
    """Fetch the broker's recent fills, adopt the orders behind fills we did not place (recording
    them), and apply the new fills once. Returns the fills applied now."""
    return sync_fills_adopting(engine, broker, run_id=run_id)[0]
