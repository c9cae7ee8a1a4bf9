"""Notifications with Prefect's own automations and notification blocks (no notifier of our own).

:func:`setup_notifications` (called by ``stockflow up`` when ``notifications.webhook_url`` or
``notifications.block`` is set) creates or replaces four automations, each with a ``SendNotification``
action on one notification block:

- **approval needed**: the event :data:`APPROVAL_EVENT`, which a trade run emits when it pauses
  (:func:`emit_approval_requested`), carrying the orders, the link to the paused run and THE deadline
  (the one stored with the approval request, shown by the form and by ``stockflow approve --list``);
- **run failed or crashed**: ``prefect.flow-run.Failed`` / ``Crashed`` of any run tagged ``stockflow``;
- **HALTED**: the event :data:`HALTED_EVENT`, emitted when the kill switch or the daily-loss breaker
  sets the trading state to HALTED (:func:`emit_halted`);
- **trade not completed** (proactive: the absence of an event): once a ``trade`` run is due (it turns
  Pending, or Late when nothing picked it up), a Completed event of that same run is expected within
  ``notifications.trade_complete_within_min`` minutes; otherwise the server notifies.

Everything is evaluated by the Prefect server's own trigger and action services; the block sends.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from stockflow.logs import get_logger

if TYPE_CHECKING:
    from stockflow.config import Settings

#: Emitted by a trade run when it pauses for approval.
APPROVAL_EVENT = "stockflow.approval.requested"
#: Emitted when the trading state becomes HALTED.
HALTED_EVENT = "stockflow.trading.halted"
#: Every automation stockflow manages has a name starting with this (replaced on each start).
AUTOMATION_PREFIX = "stockflow: "
#: The Custom Webhook notification block created for ``notifications.webhook_url``.
WEBHOOK_BLOCK_NAME = "stockflow-notifications"
#: Tag every stockflow deployment (and so every run of one) carries.
PROJECT_TAG = "stockflow"


def show_deadline(deadline: dt.datetime, zone: str) -> str:
    """``2026-12-02 11:30 EST (16:30 UTC)``: the deadline in the exchange's zone, and in UTC."""
    aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=dt.UTC)
    local = aware.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({aware.astimezone(dt.UTC):%H:%M:%S} UTC)"


def _events_reachable() -> bool:
    """Emit only where an event can go: inside a Prefect run, or with an API configured."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def emit_approval_requested(
    *,
    flow_run_id: str | None,
    trade_run_id: int,
    orders: Sequence[str],
    deadline: dt.datetime,
    zone: str = "America/New_York",
) -> bool:
    """Say that a trade run waits for a person (best effort: a failure is logged, never raised)."""
    try:
        if not _events_reachable():
            return False
        from prefect.events import emit_event
        from prefect.settings import PREFECT_UI_URL

        ui = (PREFECT_UI_URL.value() or "").rstrip("/")
        link = f"{ui}/runs/flow-run/{flow_run_id}" if ui and flow_run_id else ""
        aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=dt.UTC)
        related = []
        if flow_run_id:
            related.append(
                {
                    "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                    "prefect.resource.role": "flow-run",
                }
            )
        emit_event(
            event=APPROVAL_EVENT,
            resource={
                "prefect.resource.id": f"stockflow.trade-run.{trade_run_id}",
                "prefect.resource.name": f"trade run {trade_run_id}",
            },
            related=related,
            payload={
                "flow_run_id": flow_run_id or "",
                "link": link,
                "orders": ", ".join(orders),
                "n_orders": len(orders),
                "deadline_utc": aware.astimezone(dt.UTC).isoformat(timespec="seconds"),
                "deadline": show_deadline(aware, zone),
                "approve_cli": f"stockflow approve {flow_run_id} --approve ...",
            },
        )
        return True
    except Exception as err:  # a notification must never stop a run
        get_logger().warning(f"could not emit {APPROVAL_EVENT}: {type(err).__name__}: {err}")
        return False


def emit_halted(*, reason: str, actor: str) -> bool:
    """Say that trading is HALTED (best effort)."""
    try:
        if not _events_reachable():
            return False
        from prefect.events import emit_event

        emit_event(
            event=HALTED_EVENT,
            resource={
                "prefect.resource.id": "stockflow.trading-state",
                "prefect.resource.name": "trading state",
            },
            payload={
                "reason": reason,
                "actor": actor,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
        return True
    except Exception as err:
        get_logger().warning(f"could not emit {HALTED_EVENT}: {type(err).__name__}: {err}")
        return False


def build_automations(
    settings: Settings, block_document_id: Any, *, trade_deployment_id: str | None, book_url: str = ""
) -> list[Any]:
    """The four automations (module docstring), not yet created."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore as Automation
    from prefect.events.schemas.automations import EventTrigger, Posture

    def notify(subject: str, body: str) -> list[Any]:
        return [SendNotification(block_document_id=block_document_id, subject=subject, body=body)]

    book = f"\nThe book: {book_url}" if book_url else ""
    within = dt.timedelta(minutes=settings.notifications.trade_complete_within_min)
    trade_match: dict[str, Any] = (
        {"prefect.resource.id": f"prefect.deployment.{trade_deployment_id}"}
        if trade_deployment_id
        else {"prefect.resource.id": f"prefect.tag.{PROJECT_TAG}"}
    )
    return [
        Automation(
            name=f"{AUTOMATION_PREFIX}approval needed",
            description="A trade run paused: orders wait for a person until the deadline.",
            trigger=EventTrigger(
                expect={APPROVAL_EVENT}, posture=Posture.Reactive, threshold=1, within=dt.timedelta(0)
            ),
            actions=notify(
                "stockflow: {{ event.payload.n_orders }} order(s) wait for approval until "
                "{{ event.payload.deadline }}",
                "Orders: {{ event.payload.orders }}\n"
                "Deadline: {{ event.payload.deadline }}; not approved by then, they expire and are not "
                "sent.\nFollow the link, click Resume, approve or reject each order and submit.\n"
                "Approve or reject: {{ event.payload.link }}\n"
                "Headless: {{ event.payload.approve_cli }}" + book,
            ),
        ),
        Automation(
            name=f"{AUTOMATION_PREFIX}run failed or crashed",
            description="A stockflow flow run ended Failed or Crashed.",
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match_related={"prefect.resource.id": f"prefect.tag.{PROJECT_TAG}"},
                posture=Posture.Reactive,
                threshold=1,
                within=dt.timedelta(0),
            ),
            actions=notify(
                "stockflow: run {{ flow.name }}/{{ flow_run.name }} {{ flow_run.state.name }}",
                "{{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state.name }}: "
                "{{ flow_run.state.message }}\nOpen: {{ flow_run|ui_url }}" + book,
            ),
        ),
        Automation(
            name=f"{AUTOMATION_PREFIX}trading HALTED",
            description="The trading state became HALTED (kill switch or daily-loss breaker).",
            trigger=EventTrigger(
                expect={HALTED_EVENT}, posture=Posture.Reactive, threshold=1, within=dt.timedelta(0)
            ),
            actions=notify(
                "stockflow: trading HALTED",
                "Trading is HALTED since {{ event.payload.at }} UTC by {{ event.payload.actor }}: "
                "{{ event.payload.reason }}. Nothing new is sent until a person resets it "
                "(`stockflow state reset`)." + book,
            ),
        ),
        Automation(
            name=f"{AUTOMATION_PREFIX}trade not completed",
            description=f"No Completed event of a due trade run within {within} of its start.",
            trigger=EventTrigger(
                after={"prefect.flow-run.Pending", "prefect.flow-run.Late"},
                expect={"prefect.flow-run.Completed"},
                for_each={"prefect.resource.id"},
                match_related=trade_match,
                posture=Posture.Proactive,
                threshold=1,
                within=within,
            ),
            actions=notify(
                "stockflow: no completed trade run",
                f"The trade run due has not completed within {within} (a session day's trade is missing)."
                "\nRun: {{ flow_run|ui_url }}" + book,
            ),
        ),
    ]


def _block_document_id(settings: Settings) -> Any:
    """The notification block to send with: the named one, or a Custom Webhook block for the URL."""
    from prefect.blocks.core import Block

    cfg = settings.notifications
    if cfg.block:
        loaded: Any = Block.load(cfg.block)
        return loaded._block_document_id
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    assert cfg.webhook_url is not None
    # The URL may carry a token (Slack-style hooks): it goes into the block's secrets, and the visible
    # URL field is only a placeholder for it.
    block = CustomWebhookNotificationBlock(
        name=WEBHOOK_BLOCK_NAME,
        url="{{webhook_url}}",
        secrets={"webhook_url": cfg.webhook_url.get_secret_value()},  # type: ignore[arg-type]
        json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "{{name}}"},
    )
    block.save(WEBHOOK_BLOCK_NAME, overwrite=True)
    return block._block_document_id


def setup_notifications(settings: Settings, *, api_url: str, book_url: str = "") -> list[str]:
    """Create (or replace) the automations of the module docstring on the Prefect API at ``api_url``;
    returns their names. Nothing when notifications are off."""
    cfg = settings.notifications
    if not cfg.webhook_url and not cfg.block:
        return []
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        return _setup(settings, book_url)


def _setup(settings: Settings, book_url: str) -> list[str]:
    from prefect.client.orchestration import get_client

    cfg = settings.notifications

    block_id = _block_document_id(settings)
    flow_name, _, name = cfg.trade_deployment.partition("/")
    with get_client(sync_client=True) as client:
        try:
            trade_id: str | None = str(client.read_deployment_by_name(f"{flow_name}/{name}").id)
        except Exception:  # not registered (yet): watch every stockflow run instead
            trade_id = None
        for existing in client.read_automations():
            if existing.name.startswith(AUTOMATION_PREFIX):
                client.delete_automation(existing.id)
        names = []
        for automation in build_automations(
            settings, block_id, trade_deployment_id=trade_id, book_url=book_url
        ):
            client.create_automation(automation)
            names.append(automation.name)
    return names
