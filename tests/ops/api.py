"""Small helpers over the Prefect REST API of a running local operation (plain HTTP, no client state)."""

from __future__ import annotations

import time
from typing import Any

from stockflow.ops.local import http_get, http_post_json, read_deployments

__all__ = ["http_get", "http_post_json", "read_deployments"]

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def deployment(api: str, full_name: str) -> dict[str, Any]:
    """The deployment called ``flow/deployment``."""
    found = {d["full_name"]: d for d in read_deployments(api)}
    assert full_name in found, f"{full_name} not registered; have {sorted(found)}"
    return found[full_name]


def create_run(
    api: str, full_name: str, parameters: dict[str, Any] | None = None, *, validate: bool = True
) -> tuple[int, Any]:
    """POST create_flow_run for a deployment: (status, body). Retries a 503 (Prefect's answer to SQLite's
    "database is locked"), as Prefect's own client does. ``validate=False``: the UI's custom run with
    parameter validation off (``enforce_parameter_schema: false``)."""
    dep = deployment(api, full_name)
    payload: dict[str, Any] = {"parameters": parameters or {}}
    if not validate:
        payload["enforce_parameter_schema"] = False
    for attempt in range(5):
        status, body = http_post_json(f"{api}/deployments/{dep['id']}/create_flow_run", payload, timeout=60)
        if status != 503:
            break
        time.sleep(1 + attempt)
    return status, body


def read_run(api: str, run_id: str) -> dict[str, Any]:
    """The flow run ``run_id``."""
    status, body = http_get(f"{api}/flow_runs/{run_id}", timeout=30)
    assert status == 200, (status, body[:300])
    import json

    return dict(json.loads(body))


def wait_state(api: str, run_id: str, types: tuple[str, ...], timeout: float = 120.0) -> dict[str, Any]:
    """Poll until the run's state type is one of ``types``; the run. Fails with the last state."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = read_run(api, run_id)
        state = run.get("state") or {}
        if state.get("type") in types:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} not in {types} after {timeout:.0f}s: {run.get('state')}")


def run_logs(api: str, run_id: str) -> list[str]:
    """Every log message of a flow run and its task runs."""
    status, logs = http_post_json(
        f"{api}/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}, timeout=30
    )
    assert status == 200, logs
    return [str(line["message"]) for line in logs]


def run_artifacts(api: str, run_id: str) -> list[dict[str, Any]]:
    """Every artifact created by a flow run (and its tasks)."""
    status, arts = http_post_json(
        f"{api}/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [run_id]}}, "limit": 200},
        timeout=30,
    )
    assert status == 200, arts
    return list(arts)
