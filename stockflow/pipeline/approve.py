"""Headless approval (``stockflow approve``): list the trade runs waiting for a decision and answer one
with ``resume_flow_run(id, run_input=...)`` from any process that reaches the same Prefect API.

The paused run's saved form (its JSON schema on the Prefect API) is the authority on what may be sent:
the plan's symbols are its order fields and the plan hash is the pre-filled ``plan_hash``. Every check
runs before anything is sent; Prefect's API checks the schema again when it resumes the run.
It talks to the Prefect API on purpose: a paused run is answered only through Prefect's resume.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
from prefect.flow_runs import resume_flow_run
from prefect.input.actions import read_flow_run_input

from stockflow.pipeline.approval import (
    ApprovalError,
    build_answer,
    check_answer_against_schema,
)

TRADE_FLOW_NAME = "trade"


@dataclass(frozen=True)
class PausedRun:
    """A trade run waiting for approval, as its Prefect form describes it."""

    flow_run_id: str
    name: str
    paused_at: str
    timeout_at: str | None
    plan_hash: str
    symbols: tuple[str, ...]
    titles: tuple[str, ...]
    description: str
    schema: dict[str, Any]


def _parse_id(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(run_id).strip())
    except ValueError:
        raise ApprovalError(
            f"{run_id!r} is not a flow run id (a UUID such as 0b5e...-...); nothing sent"
        ) from None


def _form_of(flow_run: Any) -> PausedRun:
    state = flow_run.state
    keyset = state.state_details.run_input_keyset if state is not None else None
    if not keyset:
        raise ApprovalError(
            f"flow run {flow_run.id} is paused but does not wait for an approval form; nothing sent"
        )
    schema = read_flow_run_input(keyset["schema"], flow_run_id=flow_run.id)
    if not isinstance(schema, dict) or "properties" not in schema:
        raise ApprovalError(
            f"flow run {flow_run.id} has no readable approval form yet; try again in a second"
        )
    description = read_flow_run_input(keyset["description"], flow_run_id=flow_run.id) or ""
    props: dict[str, Any] = schema["properties"]
    symbols = tuple(k for k in props if k not in ("plan_hash", "note"))
    plan_hash = str(props.get("plan_hash", {}).get("default", ""))
    if not symbols or not plan_hash:
        raise ApprovalError(
            f"flow run {flow_run.id} is not paused on a stockflow trade approval; nothing sent"
        )
    timeout_at = state.state_details.pause_timeout
    return PausedRun(
        flow_run_id=str(flow_run.id),
        name=flow_run.name,
        paused_at=str(state.timestamp),
        timeout_at=None if timeout_at is None else str(timeout_at),
        plan_hash=plan_hash,
        symbols=symbols,
        titles=tuple(str(props[s].get("title", s)) for s in symbols),
        description=str(description),
        schema=schema,
    )


def list_paused_runs(limit: int = 50) -> list[PausedRun]:
    """Trade runs paused for approval on the configured Prefect API, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[TRADE_FLOW_NAME])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            limit=limit,
        )
    out = []
    for fr in sorted(runs, key=lambda r: r.state.timestamp if r.state else 0):
        try:
            out.append(_form_of(fr))
        except ApprovalError:
            continue  # paused on something that is not a trade approval
    return out


def read_paused_run(run_id: str) -> PausedRun:
    """The paused trade run ``run_id``; :class:`ApprovalError` when it does not exist or is not paused."""
    rid = _parse_id(run_id)
    with get_client(sync_client=True) as client:
        try:
            fr = client.read_flow_run(rid)
        except ObjectNotFound:
            raise ApprovalError(
                f"no flow run {rid} on the Prefect API (deleted, or another server?); nothing sent"
            ) from None
    if fr.state is None or not fr.state.is_paused():
        state = "no state" if fr.state is None else f"{fr.state.name} ({fr.state.type.value})"
        raise ApprovalError(f"flow run {rid} is {state}, not waiting for approval; nothing sent")
    return _form_of(fr)


def wait_until_paused(run_id: str, timeout_s: float) -> PausedRun:
    """The paused run ``run_id``, waiting up to ``timeout_s`` for it to reach its pause (a plan is
    stored a moment before the run pauses)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read_paused_run(run_id)
        except ApprovalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def send_approval(
    run_id: str,
    *,
    approve: Iterable[str] | str | None = None,
    reject: Iterable[str] | str | None = None,
    note: str = "",
    plan_hash: str | None = None,
    wait_s: float = 0.0,
) -> dict[str, Any]:
    """Answer the paused trade run ``run_id``: symbols in ``approve`` are approved, every other order of
    the plan is rejected. ``plan_hash`` (optional) pins the plan you looked at. Returns the answer sent.

    Raises :class:`ApprovalError` (nothing sent) for an unknown or not-paused run, a symbol not in the
    plan, a symbol both approved and rejected, a plan hash that differs, or an answer Prefect refuses.
    ``wait_s`` waits that long for a run that is about to pause (the terminal approver of ``stockflow
    run`` sees the stored plan a moment before the pause).
    """
    run = wait_until_paused(run_id, wait_s) if wait_s > 0 else read_paused_run(run_id)
    answer = build_answer(
        run.symbols, run.plan_hash, approve=approve, reject=reject, note=note, expected_hash=plan_hash
    )
    check_answer_against_schema(answer, run.schema)
    try:
        resume_flow_run(uuid.UUID(run.flow_run_id), run_input=answer)
    except NotPausedError:
        raise ApprovalError(f"flow run {run.flow_run_id} stopped waiting meanwhile; nothing sent") from None
    except FlowPauseTimeout:
        raise ApprovalError(f"flow run {run.flow_run_id} timed out waiting; nothing sent") from None
    except RuntimeError as err:  # Prefect refused the input (schema validation)
        raise ApprovalError(
            f"Prefect refused the answer for {run.flow_run_id}: {err}; nothing sent"
        ) from None
    return answer
