"""Stand-in flows and their catalog, served by the ops tests instead of the real flows.

They prove the mechanics of the local operation independently of the trading pipeline: a flow that pauses
for a ``RunInput`` form (one approve/reject drop-down per order, like the trade flow's approval) while
holding a global concurrency limit, and a flow with typed parameters (how Prefect validates them when a run
is created).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

from prefect import flow, pause_flow_run
from prefect.artifacts import create_table_artifact
from prefect.concurrency.sync import concurrency
from prefect.input import RunInput
from pydantic import Field

from deployments.catalog import ConcurrencySpec, DeploymentSpec, ScheduleSpec

Decision = Literal["approve", "reject"]
#: Global concurrency limit the stand-in approval run holds, pause included (like the trade flow's lock).
LOCK = "stockflow-test-approval"
GLOBAL_LIMITS = {LOCK: 1}


class OrderApproval(RunInput):
    """The form the paused stand-in run shows: one drop-down per order, reject by default."""

    AAPL: Decision = Field("reject", title="AAPL: BUY 10 @ 150.00", description="confidence 0.70")
    IBM: Decision = Field("reject", title="IBM: BUY 5 @ 120.00", description="confidence 0.65")
    note: str = Field("", title="Note (optional)")


def standin_plan() -> list[Any]:
    """The stand-in's two orders as the trade flow describes them (long reasons with drivers)."""
    from stockflow.pipeline.approval import ProposedOrder

    drivers = (
        "hybrid: P(outperform) in [0.5, 0.9]: needs approval; drivers (LightGBM pred_contrib (TreeSHAP)): "
        "macd_hist=-0.00332 (-0.0186 log-odds), range_pct=0.01147 (+0.0151 log-odds)"
    )
    return [
        ProposedOrder(symbol="AAPL", side="buy", qty=10, reference_price=150.0, stop_price=145.5,
                      confidence=0.7, probability=0.7, risk_amount=45.0, risk_pct=0.0045, notional=1500.0,
                      reason=drivers, client_order_id="sf-standin-AAPL", rank=1, score=0.0123,
                      expected_excess=0.0042),
        ProposedOrder(symbol="IBM", side="buy", qty=5, reference_price=120.0, stop_price=116.4,
                      confidence=0.65, probability=0.65, risk_amount=18.0, risk_pct=0.0018, notional=600.0,
                      reason=drivers, client_order_id="sf-standin-IBM", rank=2, score=0.0101,
                      expected_excess=0.0031),
    ]  # fmt: skip


def standin_description(full_table: bool, deadline: dt.datetime) -> str:
    """What the trade flow shows above its form (``full_table``: the whole plan's table, as it did
    before issue 11, to show it does not fit Prefect's modal)."""
    from stockflow.pipeline.approval import form_markdown, plan_hash, plan_markdown

    plan = standin_plan()
    show = plan_markdown if full_table else form_markdown
    head = "## Approve the stand-in orders\n\nChoose approve or reject for each order.\n\n"
    return head + show(plan, plan_hash(plan), deadline=deadline, equity=10_000.0, flow_run_id="standin")


@flow(name="standin-approval", persist_result=False)
def approval_flow(
    timeout_s: int = 300, lock_wait_s: float = 10.0, full_table: bool = False
) -> dict[str, str]:
    """Hold :data:`LOCK`, pause for approval (saying so with the trade flow's approval event, which
    the notification automations listen to), then publish the decisions as a table artifact. The form
    shows the plan as the trade flow does (:func:`standin_description`).
    (``lock_wait_s``: 2 s was too short for the slot acquisition itself on a loaded 2-core machine.)"""

    from prefect.runtime import flow_run

    from stockflow.ops.notify import emit_approval_requested

    try:
        with concurrency(LOCK, occupy=1, timeout_seconds=lock_wait_s, strict=True):
            emit_approval_requested(
                flow_run_id=flow_run.get_id(),
                trade_run_id=0,
                orders=["AAPL: BUY 10 @ 150.00", "IBM: BUY 5 @ 120.00"],
                deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout_s),
            )
            answer = pause_flow_run(
                wait_for_input=OrderApproval.with_initial_data(
                    description=standin_description(
                        full_table, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout_s)
                    )
                ),
                timeout=timeout_s,
                poll_interval=1,
            )
    except TimeoutError:
        raise RuntimeError(f"another run holds {LOCK}: refusing to run at the same time") from None
    resumed_at = time.time()
    decisions: dict[str, str] = {"AAPL": answer.AAPL, "IBM": answer.IBM}
    create_table_artifact(
        key="standin-approval-decisions",
        table=[{"symbol": s, "decision": d, "resumed_at": resumed_at} for s, d in decisions.items()],
        description="Decisions of the stand-in approval run",
    )
    return decisions


@flow(name="standin-typed", persist_result=False)
def typed_flow(mode: Literal["auto", "manual", "hybrid"] = "auto", symbols: list[str] | None = None) -> str:
    """A flow with typed parameters (validated by the API when a run is created)."""
    return f"{mode}:{','.join(symbols or [])}"


CATALOG: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        name="standin-approval",
        entrypoint="tests/ops/standin.py:approval_flow",
        description="Stand-in: pauses for an approval form.",
        tags=("test",),
        concurrency=ConcurrencySpec(limit=1, collision_strategy="CANCEL_NEW"),
    ),
    DeploymentSpec(
        name="standin-typed",
        entrypoint="tests/ops/standin.py:typed_flow",
        description="Stand-in: typed parameters.",
        parameters={"mode": "hybrid"},
        tags=("test",),
        schedules=(ScheduleSpec(cron="30 16 * * 1-5"),),
    ),
)


@flow(name="standin-log", persist_result=False)
def log_flow() -> None:
    """Log a line with non-ASCII text, as trade runs did with their drivers (``σ``): the log it lands in
    once made every later `stockflow up` time out (issue 11)."""
    from prefect import get_run_logger

    get_run_logger().info("AAPL 2012-03-30: BUY; drivers: sma_cross_50_200=0.2484 (+3.7σ), ‘adx’ − 1.2σ …")


#: The session of the trade the end-to-end test starts from the UI with "Quick run" (its default).
UI_TRADE_SESSION = "2012-04-02"


def _with_project() -> tuple[DeploymentSpec, ...]:
    import dataclasses

    from deployments.catalog import CATALOG as PROJECT

    # The trade deployment's defaults replay a session of the sample data in hybrid mode, so that a
    # person's "Quick run" in the UI asks for approval.
    project = tuple(
        dataclasses.replace(
            s, parameters={"mode": "hybrid", "as_of": UI_TRADE_SESSION}, settings_parameters={}
        )
        if s.name == "trade"
        else s
        for s in PROJECT
    )
    log = DeploymentSpec(
        name="standin-log",
        entrypoint="tests/ops/standin.py:log_flow",
        description="Stand-in: logs non-ASCII.",
    )
    return (*project, *CATALOG, log)


#: The project's deployments (trade with replay defaults) plus the stand-ins, served together by the
#: end-to-end tests.
WITH_PROJECT: tuple[DeploymentSpec, ...] = _with_project()
