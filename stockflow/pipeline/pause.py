"""Pausing a running trade flow for approval, and how the wait ends.

``pause_flow_run(wait_for_input=form, timeout=...)`` blocks the flow (nothing before it runs again:
a pause, unlike ``suspend_flow_run``, does not re-run the flow from the top). Prefect fails a run whose
pause times out, even when the flow catches the timeout, with the message "The flow was failed and
never resumed." which tells a user nothing. So the run closes the window itself: a watchdog thread
resumes the run at the deadline with every order rejected and :data:`EXPIRED_NOTE`, the flow records
the orders as expired and ends in a state named ``Expired`` that says so. Prefect's own timeout stays
as a backstop ``grace`` seconds later (API unreachable at the deadline, watchdog thread dead): then the
run still records the expiry in the database and artifacts, and Prefect ends it Failed.

Prefect's runtime is used here on purpose: an approval IS Prefect's pause/resume of the flow run (the
form, the wait and the answer live on the Prefect API), so this module cannot be Prefect-free.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run

from stockflow.logs import get_logger
from stockflow.pipeline.approval import Answer, ApprovalInput, expiry_answer, read_answer


@dataclass(frozen=True)
class WaitOutcome:
    """How the wait ended: an answer from a person, or an expiry (``how``: window_closed when the
    watchdog closed it, prefect_timeout when Prefect's backstop timeout fired)."""

    answer: Answer | None
    expired: bool
    how: str


def grace_seconds(timeout_s: float) -> int:
    """Seconds between our deadline and Prefect's backstop timeout."""
    return int(min(120, max(5, timeout_s * 0.1)))


def wait_for_approval(
    form: type[ApprovalInput],
    *,
    plan_hash: str,
    symbols: Sequence[str],
    timeout_s: float,
    poll_s: int = 1,
    watchdog: bool = True,
) -> WaitOutcome:
    """Pause the current flow run until a person answers ``form`` or ``timeout_s`` passes.

    Must run inside a flow run. ``watchdog=False`` leaves only Prefect's timeout (used to test the
    backstop path).
    """
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        raise RuntimeError("wait_for_approval must be called inside a flow run")
    flow_run_id = ctx.flow_run.id
    log = get_logger()
    stop = threading.Event()

    def close_window() -> None:
        if stop.wait(timeout_s):
            return
        try:
            resume_flow_run(flow_run_id, run_input=expiry_answer(symbols, plan_hash))
            log.warning(f"approval window of {timeout_s:.0f}s closed without an answer")
        except Exception as err:  # answered at the same moment, or the API is down: the backstop holds
            log.info(f"approval watchdog did not resume the run ({type(err).__name__}: {err})")

    prefect_timeout = int(timeout_s + (grace_seconds(timeout_s) if watchdog else 0))
    thread = None
    if watchdog:
        # Prefect's settings (API URL) live in context variables: carry them into the thread.
        ctx_copy = contextvars.copy_context()
        thread = threading.Thread(
            target=ctx_copy.run, args=(close_window,), name="approval-watchdog", daemon=True
        )
        thread.start()
    try:
        form_value = pause_flow_run(
            wait_for_input=form, timeout=max(1, prefect_timeout), poll_interval=poll_s
        )
    except FlowPauseTimeout:
        return WaitOutcome(answer=None, expired=True, how="prefect_timeout")
    finally:
        stop.set()
    if form_value is None:  # resumed without input (cannot happen with wait_for_input, but be explicit)
        return WaitOutcome(answer=None, expired=True, how="no_input")
    answer = read_answer(form_value)
    if answer.is_watchdog_expiry:
        return WaitOutcome(answer=answer, expired=True, how="window_closed")
    return WaitOutcome(answer=answer, expired=False, how="answered")
