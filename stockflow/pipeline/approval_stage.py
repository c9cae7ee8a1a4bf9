"""The approval stage of a trade run: put the orders on hold, show them, pause, and turn the answer into
the orders that may be sent. Runs inside the trade flow: it pauses the flow run (Prefect's pause/resume,
through :mod:`stockflow.pipeline.pause`, is what an approval is), so this module legitimately depends on
Prefect's runtime; the artifact it shows is published by the caller's ``show`` (``tasks/artifacts.py``).

Every ending is written to the database (``approval_requests``, ``signals``) and to the run's
``trade-approval`` markdown (through ``show``) before anything else happens:

- answered: approved orders go on to re-validation, rejected ones are stored REJECTED with the note;
- expired (no answer by the deadline): every order EXPIRED, nothing sent;
- plan mismatch (the answer names another plan hash, or the stored plan changed): nothing sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from stockflow.db.base import utcnow
from stockflow.logs import get_logger
from stockflow.ops.notify import emit_approval_requested
from stockflow.pipeline.approval import approval_form, form_markdown, plan_hash, plan_markdown
from stockflow.pipeline.pause import grace_seconds, wait_for_approval
from stockflow.pipeline.plan import PlannedOrder, Refusal
from stockflow.pipeline.signals import SignalStatus
from stockflow.pipeline.trade_records import (
    close_approval_request,
    create_approval_request,
    get_approval_request,
    set_signal_status,
)

APPROVAL_ARTIFACT_KEY = "trade-approval"


@dataclass
class ApprovalResult:
    """What came out of the approval stage."""

    status: str  # decided / expired / refused / none
    approved: list[PlannedOrder] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    message: str = ""
    note: str = ""
    request_id: int | None = None
    plan_hash: str = ""
    how: str = ""


def run_approval(
    engine: Engine,
    planned: Sequence[PlannedOrder],
    *,
    trade_run_id: int,
    flow_run_id: str | None,
    equity: float,
    timeout_s: float,
    poll_s: int,
    run_label: str = "",
    watchdog: bool = True,
    show: Callable[[str, str], object],
    book_url: str = "",
) -> ApprovalResult:
    """Pause the current flow run until a person decides on ``planned`` (see the module docstring).
    ``show(markdown, description)`` publishes the plan and its status at each step (the trade run's
    ``trade-approval`` artifact: ``tasks.artifacts.publish_approval``, the full table:
    :func:`plan_markdown`). The form shows the plan one line per order (:func:`form_markdown`, linking
    ``book_url``)."""
    log = get_logger()
    orders = [p.proposed for p in planned]
    h = plan_hash(orders)
    now = utcnow()
    deadline = now + dt.timedelta(seconds=timeout_s)
    md = plan_markdown(
        orders, h, deadline=deadline, equity=equity, run_label=run_label, flow_run_id=flow_run_id
    )
    request_id = create_approval_request(
        engine,
        trade_run_id=trade_run_id,
        flow_run_id=flow_run_id,
        orders=orders,
        plan_hash=h,
        description=md,
        deadline=deadline,
    )
    show(md + "\n\n**Status: waiting for approval.**", "Orders waiting for approval")
    # Prefect automations notify a person (issue 11): the event carries the link and THE deadline.
    emit_approval_requested(
        flow_run_id=flow_run_id,
        trade_run_id=trade_run_id,
        orders=[o.title for o in orders],
        deadline=deadline,
    )
    log.info(
        f"{len(orders)} order(s) wait for approval until {deadline:%H:%M:%S} UTC (plan {h}); "
        f"approve in the UI or: stockflow approve {flow_run_id} "
        f"--approve {','.join(o.symbol for o in orders)}"
    )
    shown = form_markdown(
        orders,
        h,
        deadline=deadline,
        equity=equity,
        run_label=run_label,
        flow_run_id=flow_run_id,
        book_url=book_url,
    )
    form = approval_form(orders, h, shown)
    outcome = wait_for_approval(
        form,
        plan_hash=h,
        symbols=[o.symbol for o in orders],
        timeout_s=timeout_s,
        poll_s=poll_s,
        watchdog=watchdog,
    )
    symbols = [o.symbol for o in orders]

    if outcome.expired:
        how = (
            f"no answer within {timeout_s:.0f}s"
            if outcome.how == "window_closed"
            else f"no answer within {timeout_s:.0f}s (+{grace_seconds(timeout_s)}s grace; "
            "Prefect timed the pause out)"
        )
        msg = (
            f"approval expired: {how}; {len(orders)} order(s) expired unapproved and were NOT sent: "
            + ", ".join(o.title for o in orders)
        )
        set_signal_status(
            engine,
            trade_run_id,
            symbols,
            SignalStatus.EXPIRED,
            reason_code="approval:expired",
            reason=msg,
            decided_by="timeout",
        )
        close_approval_request(engine, request_id, status="expired", message=msg)
        show(md + f"\n\n**Status: EXPIRED.** {msg}", "Approval expired: nothing sent")
        log.warning(msg)
        return ApprovalResult(
            "expired",
            refused=[Refusal(s, "approval:expired", msg, SignalStatus.EXPIRED) for s in symbols],
            message=msg,
            request_id=request_id,
            plan_hash=h,
            how=outcome.how,
        )

    answer = outcome.answer
    assert answer is not None
    stored = get_approval_request(engine, request_id)
    stored_hash = plan_hash(stored.orders)
    if answer.plan_hash != h or stored_hash != h:
        msg = (
            f"plan mismatch: the answer is for plan {answer.plan_hash!r} but this run showed plan {h!r}"
            + (f" (stored plan now hashes to {stored_hash!r})" if stored_hash != h else "")
            + "; NOTHING was sent. Look at the plan again and answer the run that shows it."
        )
        set_signal_status(
            engine,
            trade_run_id,
            symbols,
            SignalStatus.REJECTED,
            reason_code="approval:plan_mismatch",
            reason=msg,
            decided_by="plan_hash",
            note=answer.note,
        )
        close_approval_request(engine, request_id, status="refused", message=msg, note=answer.note)
        show(md + f"\n\n**Status: REFUSED.** {msg}", "Approval refused: plan mismatch")
        log.error(msg)
        return ApprovalResult(
            "refused",
            refused=[Refusal(s, "approval:plan_mismatch", msg) for s in symbols],
            message=msg,
            note=answer.note,
            request_id=request_id,
            plan_hash=h,
            how=outcome.how,
        )

    approved = [p for p in planned if p.symbol in answer.approved]
    rejected = [s for s in symbols if s not in answer.approved]
    note_txt = f" (note: {answer.note})" if answer.note else ""
    if rejected:
        set_signal_status(
            engine,
            trade_run_id,
            rejected,
            SignalStatus.REJECTED,
            reason_code="human:rejected",
            reason=f"rejected by a person{note_txt}",
            decided_by="human",
            note=answer.note,
        )
    if approved:
        set_signal_status(
            engine,
            trade_run_id,
            [p.symbol for p in approved],
            SignalStatus.APPROVED,
            reason_code="human:approved",
            reason=f"approved by a person{note_txt}",
            decided_by="human",
            note=answer.note,
        )
    msg = (
        f"approved: {', '.join(answer.approved) or 'nothing'}; rejected: {', '.join(rejected) or 'nothing'}"
        + note_txt
    )
    close_approval_request(
        engine,
        request_id,
        status="decided",
        message=msg,
        decision={s: ("approve" if s in answer.approved else "reject") for s in symbols},
        note=answer.note,
    )
    show(md + f"\n\n**Status: DECIDED.** {msg}. Approved orders are re-validated before sending.", msg[:200])
    log.info(msg)
    return ApprovalResult(
        "decided",
        approved=approved,
        refused=[Refusal(s, "human:rejected", f"rejected by a person{note_txt}") for s in rejected],
        message=msg,
        note=answer.note,
        request_id=request_id,
        plan_hash=h,
        how=outcome.how,
    )
