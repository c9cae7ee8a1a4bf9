"""Our order book, fills and ledger in the database: conversions and queries shared by execution,
reconciliation and the CLI."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import LedgerPosition, OrderRow, ReconciliationEvent
from stockflow.domain.orders import (
    OPEN_STATUSES,
    ZERO,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

#: Statuses of rows whose order may not have reached the broker (resending under the SAME id is safe).
UNSENT_STATUSES = frozenset({OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN, OrderStatus.NOT_SENT})


def row_to_order(r: OrderRow) -> Order:
    """Our row as a domain ``Order``."""
    return Order(
        client_order_id=r.client_order_id,
        symbol=r.symbol,
        side=Side(r.side),
        qty=r.qty,
        type=OrderType(r.type),
        status=OrderStatus(r.status),
        broker_order_id=r.broker_order_id,
        filled_qty=r.filled_qty,
        avg_fill_price=r.avg_fill_price,
        limit_price=r.limit_price,
        stop_price=r.stop_price,
        time_in_force=TimeInForce(r.time_in_force),
        submitted_at=r.submitted_at,
        updated_at=r.updated_at,
        reject_reason=r.error,
    )


def new_order_row(
    request: OrderRequest,
    *,
    broker: str,
    run_id: str | None,
    session: dt.date | None,
    status: OrderStatus,
    origin: str = "stockflow",
) -> OrderRow:
    """A row for ``request`` (not added to any session)."""
    now = utcnow()
    return OrderRow(
        client_order_id=request.client_order_id,
        broker=broker,
        run_id=run_id,
        session=session,
        symbol=request.symbol,
        side=request.side.value,
        qty=request.qty,
        type=request.type.value,
        time_in_force=request.time_in_force.value,
        limit_price=request.limit_price,
        stop_price=request.stop_price,
        reference_price=request.reference_price,
        reason=request.reason,
        intent=request.intent,
        origin=origin,
        status=status.value,
        filled_qty=ZERO,
        submit_attempts=0,
        created_at=now,
        updated_at=now,
    )


def outside_order_row(order: Order, *, broker: str, run_id: str | None) -> OrderRow:
    """A row adopting an order someone else placed at the broker."""
    now = utcnow()
    return OrderRow(
        client_order_id=order.client_order_id,
        broker=broker,
        broker_order_id=order.broker_order_id,
        run_id=run_id,
        session=None,
        symbol=order.symbol,
        side=order.side.value,
        qty=order.qty,
        type=order.type.value,
        time_in_force=order.time_in_force.value,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        reason="placed outside stockflow",
        intent="entry",
        origin="outside",
        status=order.status.value,
        filled_qty=order.filled_qty,
        avg_fill_price=order.avg_fill_price,
        submit_attempts=0,
        created_at=now,
        acknowledged_at=now,
        updated_at=now,
    )


def update_row_from_broker(row: OrderRow, order: Order) -> bool:
    """Copy the broker's view onto our row; True when something changed."""
    changed = (
        row.status != order.status.value
        or row.broker_order_id != order.broker_order_id
        or row.filled_qty != order.filled_qty
        or row.avg_fill_price != order.avg_fill_price
    )
    if row.broker_order_id is None or row.acknowledged_at is None:
        row.acknowledged_at = utcnow()
    row.broker_order_id = order.broker_order_id
    row.status = order.status.value
    row.filled_qty = order.filled_qty
    row.avg_fill_price = order.avg_fill_price
    if order.reject_reason:
        row.error = order.reject_reason
    row.updated_at = utcnow()
    return changed


def record_event(
    s: Session,
    *,
    broker: str,
    run_id: str | None,
    kind: str,
    symbol: str | None = None,
    client_order_id: str | None = None,
    **detail: object,
) -> None:
    """Add one reconciliation/execution event (JSON-safe detail)."""
    s.add(
        ReconciliationEvent(
            run_id=run_id,
            broker=broker,
            kind=kind,
            symbol=symbol,
            client_order_id=client_order_id,
            detail={
                k: (str(v) if isinstance(v, Decimal | dt.date | dt.datetime) else v)
                for k, v in detail.items()
            },
            created_at=utcnow(),
        )
    )


def list_orders(
    engine: Engine,
    *,
    broker: str | None = None,
    open_only: bool = False,
    run_id: str | None = None,
    limit: int = 100,
) -> list[OrderRow]:
    """Our order rows, newest first."""
    with transaction(engine) as s:
        stmt = select(OrderRow)
        if broker is not None:
            stmt = stmt.where(OrderRow.broker == broker)
        if open_only:
            stmt = stmt.where(OrderRow.status.in_([st.value for st in OPEN_STATUSES]))
        if run_id is not None:
            stmt = stmt.where(OrderRow.run_id == run_id)
        return list(s.scalars(stmt.order_by(OrderRow.id.desc()).limit(limit)).all())


def ledger_positions(engine: Engine, broker: str) -> list[Position]:
    """Our ledger's non-zero positions for ``broker`` (average cost from applied fills)."""
    with transaction(engine) as s:
        rows = s.scalars(
            select(LedgerPosition).where(LedgerPosition.broker == broker).order_by(LedgerPosition.symbol)
        ).all()
        return [
            Position(symbol=r.symbol, qty=r.qty, avg_entry_price=r.cost_basis / r.qty)
            for r in rows
            if r.qty != 0
        ]


def events(engine: Engine, *, run_id: str | None = None, limit: int = 100) -> list[ReconciliationEvent]:
    """Reconciliation/execution events, newest first."""
    with transaction(engine) as s:
        stmt = select(ReconciliationEvent)
        if run_id is not None:
            stmt = stmt.where(ReconciliationEvent.run_id == run_id)
        return list(s.scalars(stmt.order_by(ReconciliationEvent.id.desc()).limit(limit)).all())
