"""``stockflow status``: is the local operation up, which deployments run on which schedule."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockflow.config import Settings
from stockflow.ops.api import http_get, read_deployments
from stockflow.ops.opconfig import read_state
from stockflow.ops.security import CLIENT_AUTH_ENV, SERVER_AUTH_ENV


@dataclass(frozen=True)
class DeploymentStatus:
    """One registered deployment as the API reports it."""

    full_name: str
    paused: bool
    schedules: tuple[str, ...]
    concurrency_limit: int | None
    next_run: str | None = None  # the next scheduled start, in New York time with its zone


@dataclass(frozen=True)
class OperationStatus:
    """What ``stockflow status`` shows."""

    ui_url: str
    api_ok: bool
    reports_url: str
    reports_ok: bool
    up_pid: int | None
    deployments: tuple[DeploymentStatus, ...]
    timings: dict[str, float]
    reports_auth_needed: bool = False


def collect_status(settings: Settings, prefect_home: Path) -> OperationStatus:
    """Ask the API and the reports server; ports come from the running operation's state file if any."""
    state = read_state(prefect_home) or {}
    host = settings.server.host if settings.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    ui_url = state.get("ui_url") or f"http://{host}:{settings.server.prefect_port}"
    api_url = state.get("api_url") or f"{ui_url}/api"
    reports_url = state.get("reports_url") or f"http://{host}:{settings.server.reports_port}"
    auth = os.environ.get(CLIENT_AUTH_ENV) or os.environ.get(SERVER_AUTH_ENV) or None
    api_ok = http_get(f"{api_url}/health", auth=auth, timeout=3)[0] == 200
    # The reports server asks for the same user/password as the API when exposed (issue 12: it was shown
    # DOWN because this request carried no credentials); 401 still means it answers.
    reports_status = http_get(reports_url + "/book.json", auth=auth, timeout=3)[0]
    reports_ok = reports_status in (200, 401, 404, 503)
    deployments: list[DeploymentStatus] = []
    if api_ok:
        for d in sorted(read_deployments(api_url, auth=auth), key=lambda d: d["full_name"]):
            schedules = tuple(
                f"{s['schedule'].get('cron') or s['schedule']} ({s['schedule'].get('timezone', 'UTC')})"
                + ("" if s.get("active", True) else " inactive")
                for s in d.get("schedules") or []
            )
            gcl = d.get("global_concurrency_limit") or {}
            deployments.append(
                DeploymentStatus(
                    full_name=d["full_name"],
                    paused=bool(d.get("paused")),
                    schedules=schedules,
                    concurrency_limit=gcl.get("limit") if isinstance(gcl, dict) else None,
                    next_run=_next_run(d.get("schedules") or []),
                )
            )
    return OperationStatus(
        ui_url=ui_url,
        api_ok=api_ok,
        reports_url=reports_url,
        reports_ok=reports_ok,
        up_pid=state.get("pid"),
        deployments=tuple(deployments),
        timings=dict(state.get("timings") or {}),
        reports_auth_needed=reports_status == 401,
    )


def _next_run(schedules: list[dict[str, Any]]) -> str | None:
    """When the deployment's active cron schedules next fire, in New York time with its zone (computed
    from the schedule itself: right after a start the scheduler may not have created the runs yet)."""
    from prefect.server.schemas.schedules import CronSchedule

    from stockflow.ops.book import show_time

    upcoming = []
    for s in schedules:
        sched = s.get("schedule") or {}
        if s.get("active", True) and sched.get("cron"):
            cron = CronSchedule(cron=sched["cron"], timezone=sched.get("timezone") or "UTC")
            upcoming += asyncio.run(cron.get_dates(n=1))  # a plain computation, async in Prefect's API
    return show_time(min(upcoming)) if upcoming else None


def format_status(st: OperationStatus) -> str:
    """The status as a few readable lines."""
    lines = [
        f"Prefect UI   {st.ui_url}  {'up' if st.api_ok else 'DOWN'}"
        + (f" (stockflow up pid {st.up_pid})" if st.up_pid else ""),
        f"Reports      {st.reports_url}/  {'up' if st.reports_ok else 'DOWN'}"
        + (f" (asks for a password: set {CLIENT_AUTH_ENV})" if st.reports_auth_needed else ""),
    ]
    if st.api_ok:
        lines.append(f"Deployments  {len(st.deployments)}")
        for d in st.deployments:
            sched = "; ".join(d.schedules) or "on demand"
            limit = f", at most {d.concurrency_limit} at a time" if d.concurrency_limit else ""
            nxt = f"; next {d.next_run}" if d.next_run else ""
            lines.append(f"  {d.full_name:<28} {'PAUSED' if d.paused else 'active':<7} {sched}{limit}{nxt}")
    if st.timings:
        lines.append("Started in   " + ", ".join(f"{k} {v:.1f}s" for k, v in st.timings.items()))
    return "\n".join(lines)
