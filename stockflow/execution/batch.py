"""Sending one run's approved orders: exits first, each after the pre-send guards (wash trades, pattern
day trading; :mod:`stockflow.execution.guards`), each idempotently (:func:`submit_order`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Engine, select

from stockflow.brokers.base import Broker
from stockflow.db.engine import transaction
from stockflow.db.models_trading import OrderRow
from stockflow.domain.orders import OrderRequest, OrderStatus, to_decimal
from stockflow.execution.guards import clear_conflicts, conflicts, pdt_refusal, pdt_state
from stockflow.execution.intents import intent_order_id
from stockflow.execution.submit import ExecutionResult, submit_order
from stockflow.risk.pdt import PDT_EQUITY, DayTrades


def renewed(engine: Engine, req: OrderRequest, *, run_id: str, session: dt.date | None) -> OrderRequest:
    """The request under a fresh id when its id belongs to an order that ended without any fill
    (cancelled, expired, rejected): sending the decision again is a new intent, and Alpaca never takes
    an id twice. An id whose order filled (even in part) or still works keeps it: a replay then sends
    nothing (``already_submitted``)."""
    with transaction(engine) as s:
        row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == req.client_order_id)).first()
        dead = (
            row is not None
            and row.status
            in (OrderStatus.CANCELED.value, OrderStatus.EXPIRED.value, OrderStatus.REJECTED.value)
            and row.filled_qty == 0
        )
    if not dead:
        return req
    cid = intent_order_id(
        engine,
        run_id=run_id,
        session=session or dt.date.min,
        symbol=req.symbol,
        side=req.side,
        purpose="again",
        content=f"{req.client_order_id}|{req.qty}",
        filled_is_done=True,
    )
    return req.model_copy(update={"client_order_id": cid})


def execute_orders(
    engine: Engine,
    broker: Broker,
    requests: Sequence[OrderRequest],
    *,
    run_id: str,
    session: dt.date | None = None,
    retry_wait_s: float = 0.5,
    pdt_min_equity: Decimal | float = PDT_EQUITY,
) -> list[ExecutionResult]:
    """Send approved orders in order (exits first). After an unknown outcome nothing more is sent in
    this run (the rest are ``refused``): reconcile first. Before each order our conflicting open orders
    are cancelled (wash-trade rule; an exit also cancels the symbol's resting stop), and an order the
    pattern-day-trader rule forbids is refused (``denied:pdt``) without reaching the broker."""
    results: list[ExecutionResult] = []
    stop_sending: str | None = None
    min_equity = to_decimal(pdt_min_equity)
    pdt: DayTrades | None = None
    equity = Decimal(0)
    if requests and min_equity > 0:
        equity = broker.account().equity
        pdt = pdt_state(engine, broker) if equity < min_equity else None
    open_orders = broker.open_orders() if requests else []
    for req in sorted(requests, key=lambda r: 0 if r.intent == "exit" else 1):
        if stop_sending is not None:
            results.append(ExecutionResult(req, "refused", error=stop_sending))
            continue
        refusal = pdt_refusal(pdt, req, equity, min_equity)
        if refusal is None:
            refusal = clear_conflicts(engine, broker, req, open_orders, run_id=run_id)
            if refusal is None:
                gone = {o.client_order_id for o in conflicts(req, open_orders)}
                open_orders = [o for o in open_orders if o.client_order_id not in gone]
        if refusal is not None:
            results.append(ExecutionResult(req, "refused", error=refusal))
            continue
        sendable = renewed(engine, req, run_id=run_id, session=session)
        res = submit_order(
            engine, broker, sendable, run_id=run_id, session=session, retry_wait_s=retry_wait_s
        )
        results.append(res)
        if res.sent and pdt is not None:
            pdt = pdt.after(req.symbol, req.side)
        if res.order is not None and res.order.is_open:
            open_orders.append(res.order)
        if res.outcome == "unknown":
            stop_sending = f"order {sendable.client_order_id} has an unknown outcome: reconcile first"
    return results
