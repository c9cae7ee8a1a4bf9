"""Plain HTTP helpers over the Prefect REST API and local ports (no client state, no Prefect import):
used by ``stockflow up``, ``stockflow status``, the serve process and the tests."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (so a server can bind it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_get(url: str, *, auth: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``: (status, body); status 0 when nothing answers."""
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def http_post_json(
    url: str, payload: Any, *, auth: str | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    """POST JSON to ``url``: (status, decoded JSON or None); status 0 when nothing answers."""
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return int(err.code), json.loads(body or b"null")
        except ValueError:
            return int(err.code), body.decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, None


def read_deployments(api_url: str, *, auth: str | None = None) -> list[dict[str, Any]]:
    """Every deployment the API knows, with its flow name, as returned by ``/deployments/filter``."""
    status, deployments = http_post_json(f"{api_url}/deployments/filter", {"limit": 200}, auth=auth)
    if status != 200 or not isinstance(deployments, list):
        return []
    status, flows = http_post_json(f"{api_url}/flows/filter", {"limit": 200}, auth=auth)
    names = {f["id"]: f["name"] for f in flows} if status == 200 and isinstance(flows, list) else {}
    for d in deployments:
        d["flow_name"] = names.get(d.get("flow_id"), "?")
        d["full_name"] = f"{d['flow_name']}/{d['name']}"
    return deployments


def settle_runs(
    api_url: str, full_names: Sequence[str], reason: str, *, pause: bool, auth: str | None = None
) -> list[str]:
    """Optionally pause the deployments ``full_names`` (which deletes their future scheduled runs), and
    mark their unfinished runs (Paused, Running, Pending, Cancelling) Cancelled with ``reason``.

    Used when the process that executes those runs has ended (or before a new one starts): nothing can
    finish them, and an approval given later must not look as if it could still trade. Returns the ids
    of the cancelled runs.
    """
    wanted = set(full_names)
    deployments = [d for d in read_deployments(api_url, auth=auth) if d["full_name"] in wanted]
    if pause:
        for d in deployments:
            http_post_json(f"{api_url}/deployments/{d['id']}/pause_deployment", {}, auth=auth)
    if not deployments:
        return []
    status, runs = http_post_json(
        f"{api_url}/flow_runs/filter",
        {
            "flow_runs": {
                "deployment_id": {"any_": [d["id"] for d in deployments]},
                "state": {"type": {"any_": ["PAUSED", "RUNNING", "PENDING", "CANCELLING"]}},
            },
            "limit": 200,
        },
        auth=auth,
    )
    cancelled: list[str] = []
    for run in runs if status == 200 and isinstance(runs, list) else []:
        st, _ = http_post_json(
            f"{api_url}/flow_runs/{run['id']}/set_state",
            {"state": {"type": "CANCELLED", "name": "Cancelled", "message": reason}, "force": True},
            auth=auth,
        )
        if st in (200, 201):
            cancelled.append(str(run["id"]))
    return cancelled


def api_timestamp(value: Any) -> float:
    """Seconds since the epoch of an ISO timestamp from the API; 0.0 when missing or unreadable."""
    if not value:
        return 0.0
    import datetime as dt

    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
