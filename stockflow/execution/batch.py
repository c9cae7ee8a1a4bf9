"""Sending one run's approved orders: exits first, each after the pre-send guards (wash trades, pattern
day trading; :mod:`stockflow.execution.guards`), each idempotently (:func:`submit_order`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Engine

from stockflow.brokers.base import Broker
from stockflow.domain.orders import OrderRequest, to_decimal
from stockflow.execution.guards import clear_conflicts, conflicts, pdt_refusal, pdt_state
from stockflow.execution.submit import ExecutionResult, submit_order
from stockflow.risk.pdt import PDT_EQUITY, DayTrades


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
        res = submit_order(engine, broker, req, run_id=run_id, session=session, retry_wait_s=retry_wait_s)
        results.append(res)
        if res.sent and pdt is not None:
            pdt = pdt.after(req.symbol, req.side)
        if res.order is not None and res.order.is_open:
            open_orders.append(res.order)
        if res.outcome == "unknown":
            stop_sending = f"order {req.client_order_id} has an unknown outcome: reconcile first"
    return results
