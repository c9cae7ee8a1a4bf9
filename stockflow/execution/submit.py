"""Idempotent order submission.

For every order: (1) the row is written to our database with status ``pending_submit`` BEFORE anything
is sent, under its deterministic client_order_id; (2) it is sent; (3) the broker's acknowledgement is
written back. A crash between any two steps is repaired by reconciliation, and sending again is always
under the SAME id:

- duplicate client_order_id (422/40010001): it was already submitted -> fetch it and adopt it;
- 429 and other ``RetryableError``: nothing happened -> retry with the same id (bounded, with backoff,
  never before the broker's ``X-Ratelimit-Reset``);
- timeout/5xx (``OutcomeUnknownError``): look the id up; found -> adopt; not found -> status ``unknown``,
  nothing else is sent in this run, and the next reconciliation settles it. Never a new id;
- ``RejectedError``: status ``rejected`` with the broker's reason.

The trading state is checked again right before sending (HALTED sends nothing; REDUCING only exits),
and no new order is sent while another order's outcome is unknown.

Failpoints (crash tests): ``STOCKFLOW_FAILPOINTS=submit.after_db_write`` or ``submit.after_broker_ack``
makes the process exit abruptly (``os._exit``) at that point; unset in normal operation.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, select

from stockflow.brokers.base import Broker, DuplicateClientOrderIdError
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import OrderRow
from stockflow.domain.orders import Order, OrderRequest, OrderStatus, TradingState
from stockflow.errors import OutcomeUnknownError, RejectedError, RetryableError
from stockflow.execution._log import trading_logger
from stockflow.execution.order_records import (
    UNSENT_STATUSES,
    new_order_row,
    record_event,
    row_to_order,
    update_row_from_broker,
)
from stockflow.risk.state import get_state

#: The longest wait for a rate limit to reset before resending (a longer one counts as an attempt).
MAX_RATE_WAIT_S = 10.0

Outcome = Literal[
    "submitted",  # acknowledged by the broker now
    "adopted",  # the broker already had it (duplicate id, or found after an unknown outcome)
    "already_submitted",  # our database shows it was sent and acknowledged before: nothing sent
    "rejected",  # the broker refused it
    "unknown",  # outcome unknown: reconcile before trading on
    "retry_exhausted",  # still rate limited / unreachable after the retries: not sent
    "refused",  # not sent: trading state, or another order's outcome is unknown
]


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What happened to one order request."""

    request: OrderRequest
    outcome: Outcome
    order: Order | None = None
    error: str | None = None

    @property
    def sent(self) -> bool:
        """True when the broker has the order (submitted, adopted or already submitted)."""
        return self.outcome in ("submitted", "adopted", "already_submitted")


def _failpoint(name: str) -> None:
    # Crash tests kill the process at exact points; os._exit skips every cleanup, like a power cut.
    if name in os.environ.get("STOCKFLOW_FAILPOINTS", "").split(","):
        os._exit(137)


def _state_refusal(engine: Engine, request: OrderRequest, allow_when_halted: bool) -> str | None:
    state = get_state(engine)
    if state.state is TradingState.HALTED and not allow_when_halted:
        return f"trading state HALTED ({state.reason}): no new orders"
    if state.state is TradingState.REDUCING and request.intent != "exit":
        return f"trading state REDUCING ({state.reason}): exits only"
    return None


def _save(engine: Engine, cid: str, **values: object) -> None:
    with transaction(engine) as s:
        row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one()
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = utcnow()


def _adopt(engine: Engine, broker: Broker, cid: str, order: Order, *, kind: str, run_id: str | None) -> None:
    with transaction(engine) as s:
        row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one()
        update_row_from_broker(row, order)
        record_event(
            s,
            broker=broker.name,
            run_id=run_id,
            kind=kind,
            symbol=order.symbol,
            client_order_id=cid,
            broker_order_id=order.broker_order_id,
            status=order.status.value,
        )


def submit_order(
    engine: Engine,
    broker: Broker,
    request: OrderRequest,
    *,
    run_id: str,
    session: dt.date | None = None,
    allow_when_halted: bool = False,
    max_retries: int = 4,
    retry_wait_s: float = 0.5,
) -> ExecutionResult:
    """Send one order idempotently (see the module docstring). Never raises for broker outcomes: the
    result says what happened. ``allow_when_halted`` is for flattening exits ordered by the breaker."""
    log = trading_logger("stockflow.execution")
    cid = request.client_order_id
    refusal = _state_refusal(engine, request, allow_when_halted)
    if refusal is not None:
        return ExecutionResult(request, "refused", error=refusal)

    # 1. The row, BEFORE anything is sent.
    with transaction(engine) as s:
        row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one_or_none()
        if row is not None and OrderStatus(row.status) not in UNSENT_STATUSES:
            return ExecutionResult(request, "already_submitted", order=row_to_order(row))
        blocking = s.scalars(
            select(OrderRow).where(
                OrderRow.broker == broker.name,
                OrderRow.client_order_id != cid,
                OrderRow.status.in_([OrderStatus.UNKNOWN.value, OrderStatus.PENDING_SUBMIT.value]),
            )
        ).first()
        if blocking is not None:
            return ExecutionResult(
                request,
                "refused",
                error=(
                    f"order {blocking.client_order_id} ({blocking.symbol}) has an unknown outcome: "
                    "reconcile before sending anything else"
                ),
            )
        if row is None:
            row = new_order_row(
                request, broker=broker.name, run_id=run_id, session=session, status=OrderStatus.PENDING_SUBMIT
            )
            s.add(row)
        else:  # written before but never confirmed sent: resend under the same id
            row.status = OrderStatus.PENDING_SUBMIT.value
    _failpoint("submit.after_db_write")

    # 2. Send, retrying only what is safe to retry; always the same id.
    attempt = 0
    while True:
        attempt += 1
        _save(engine, cid, submit_attempts=OrderRow.submit_attempts + 1, submitted_at=utcnow())
        try:
            order = broker.submit(request)
        except DuplicateClientOrderIdError:
            found = broker.get_order_by_client_id(cid)
            if found is None:
                _save(
                    engine,
                    cid,
                    status=OrderStatus.UNKNOWN.value,
                    error="broker says the id is taken but cannot find it",
                )
                return ExecutionResult(request, "unknown", error="duplicate id but order not found")
            _adopt(engine, broker, cid, found, kind="adopted_duplicate", run_id=run_id)
            log.info("order %s already at the broker (duplicate id): adopted", cid)
            return ExecutionResult(request, "adopted", order=found)
        except RetryableError as err:
            if attempt > max_retries:
                _save(engine, cid, status=OrderStatus.NOT_SENT.value, error=f"not sent: {err}")
                return ExecutionResult(request, "retry_exhausted", error=str(err))
            # Backoff, but never sooner than the broker said its rate limit resets (capped).
            wait = retry_wait_s * 2 ** (attempt - 1)
            if err.retry_after is not None:
                wait = max(wait, min(err.retry_after, MAX_RATE_WAIT_S))
            time.sleep(wait)
            continue
        except RejectedError as err:
            _save(engine, cid, status=OrderStatus.REJECTED.value, error=str(err))
            return ExecutionResult(request, "rejected", error=str(err))
        except OutcomeUnknownError as err:
            return _resolve_unknown(engine, broker, request, run_id, str(err))
        _failpoint("submit.after_broker_ack")
        # 3. The acknowledgement.
        with transaction(engine) as s:
            row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one()
            update_row_from_broker(row, order)
        return ExecutionResult(request, "submitted", order=order)


def _resolve_unknown(
    engine: Engine, broker: Broker, request: OrderRequest, run_id: str | None, error: str
) -> ExecutionResult:
    cid = request.client_order_id
    try:
        found = broker.get_order_by_client_id(cid)
    except (RetryableError, RejectedError) as err:
        found, error = None, f"{error}; lookup failed: {err}"
    if found is not None:
        _adopt(engine, broker, cid, found, kind="adopted_after_unknown", run_id=run_id)
        return ExecutionResult(request, "adopted", order=found)
    _save(engine, cid, status=OrderStatus.UNKNOWN.value, error=error)
    with transaction(engine) as s:
        record_event(
            s,
            broker=broker.name,
            run_id=run_id,
            kind="outcome_unknown",
            symbol=request.symbol,
            client_order_id=cid,
            error=error,
        )
    return ExecutionResult(request, "unknown", error=error)


def cancel_order(
    engine: Engine, broker: Broker, client_order_id: str, *, run_id: str | None = None
) -> Order | None:
    """Cancel one of our orders at the broker (allowed in every trading state) and record the result."""
    with transaction(engine) as s:
        row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == client_order_id)).one_or_none()
        broker_id = row.broker_order_id if row is not None else None
    order = broker.get_order_by_client_id(client_order_id) if broker_id is None else None
    if broker_id is None and order is not None:
        broker_id = order.broker_order_id
    if broker_id is None:
        if row is not None and OrderStatus(row.status) in UNSENT_STATUSES:
            _save(
                engine, client_order_id, status=OrderStatus.NOT_SENT.value, error="cancelled before sending"
            )
        return None
    broker.cancel(broker_id)
    order = broker.get_order(broker_id)
    with transaction(engine) as s:
        row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == client_order_id)).one_or_none()
        if row is not None and order is not None:
            update_row_from_broker(row, order)
        record_event(
            s,
            broker=broker.name,
            run_id=run_id,
            kind="cancel_requested",
            symbol=order.symbol if order else None,
            client_order_id=client_order_id,
            status=order.status.value if order else None,
        )
    return order
