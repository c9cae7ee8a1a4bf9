"""Waiting for fills after submitting: poll the broker until each order is final, then cancel the ones
that hang (still working after ``timeout_s`` while the market is open) and apply the fills."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Engine, select

from stockflow.brokers.base import Broker
from stockflow.db.engine import transaction
from stockflow.db.models_trading import OrderRow
from stockflow.domain.orders import Order, OrderType
from stockflow.errors import RejectedError, RetryableError
from stockflow.execution._log import trading_logger
from stockflow.execution.fills import sync_fills
from stockflow.execution.order_records import update_row_from_broker
from stockflow.execution.submit import cancel_order


def await_orders(
    engine: Engine,
    broker: Broker,
    client_order_ids: Sequence[str],
    *,
    timeout_s: float,
    interval_s: float = 1.0,
    cancel_on_timeout: bool = True,
    run_id: str | None = None,
) -> list[Order]:
    """Poll until every order is final or ``timeout_s`` passes; then cancel what still hangs (never
    resting stop orders, and only while the market is open: a closed market legitimately queues),
    record the final states and apply new fills. Returns the last known state of each order."""
    log = trading_logger("stockflow.execution")
    deadline = time.monotonic() + timeout_s
    last: dict[str, Order] = {}
    pending = list(client_order_ids)
    while pending:
        still: list[str] = []
        for cid in pending:
            try:
                o = broker.get_order_by_client_id(cid)
            except RetryableError:
                still.append(cid)
                continue
            if o is None:
                continue
            last[cid] = o
            if o.is_open and o.type is not OrderType.STOP:
                still.append(cid)
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    if pending and cancel_on_timeout:
        try:
            market_open = broker.clock().is_open
        except (RetryableError, RejectedError):
            market_open = True
        if market_open:
            for cid in pending:
                log.warning("order %s still working after %.0fs: cancelling it", cid, timeout_s)
                o2 = cancel_order(engine, broker, cid, run_id=run_id)
                if o2 is not None:
                    last[cid] = o2
    with transaction(engine) as s:
        for cid, o in last.items():
            row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one_or_none()
            if row is not None:
                update_row_from_broker(row, o)
    sync_fills(engine, broker, run_id=run_id)
    return [last[c] for c in client_order_ids if c in last]
