"""Notifications through Prefect's own automations, received on a loopback webhook.

`stockflow up` (here: the local operation serving the stand-in deployments) reads the notification
settings and creates Prefect automations with a SendNotification action on a Custom Webhook notification
block pointing at a tiny HTTP server on 127.0.0.1. The Prefect server's own trigger and action services
evaluate them; the test only creates runs and reads what the webhook received:

- a run paused for approval (the stand-in emits the trade flow's approval event): link and deadline;
- the same run not completed in time (a proactive trigger: the absence of the Completed event);
- a run that failed;
- trading HALTED.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stockflow.config import load_settings
from stockflow.ops.local import LocalOperation
from stockflow.ops.notify import AUTOMATION_PREFIX
from tests.ops import api
from tests.ops.test_local_operation import APPROVAL, make_config

pytestmark = pytest.mark.slow


class Inbox:
    """What the loopback webhook received, in order."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def add(self, message: dict[str, Any]) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 90.0, body_contains: str = "") -> dict[str, Any]:
        """The first message whose subject contains ``text`` (and body ``body_contains``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if text in str(m.get("subject", "")) and body_contains in str(m.get("body", "")):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no notification with {text!r} in {timeout:.0f}s: {self.messages}")
                self._cond.wait(left)


@contextlib.contextmanager
def serve_inbox(box: Inbox) -> Iterator[str]:
    """A webhook server on 127.0.0.1 putting every POSTed JSON body into ``box``; yields its URL."""

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            box.add(json.loads(body or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, str]]:
    box = Inbox()
    with serve_inbox(box) as url:
        yield box, url


@pytest.fixture(scope="module")
def operation(tmp_path_factory: pytest.TempPathFactory, inbox: tuple[Inbox, str]) -> Iterator[LocalOperation]:
    home = tmp_path_factory.mktemp("prefect-home")
    reports = tmp_path_factory.mktemp("reports")
    settings = load_settings(
        data_dir=home / "data",
        reports_dir=reports,
        notifications={
            "webhook_url": inbox[1],
            "trade_deployment": APPROVAL,  # the stand-in plays the trade deployment
            "trade_complete_within_min": 0.25,  # 15 s
        },
    )
    steps: list[str] = []
    op = LocalOperation(make_config(home, reports), settings, on_step=steps.append)
    op.start()
    assert any("notifications: 4 Prefect automation(s)" in s for s in steps), steps
    try:
        yield op
    finally:
        op.stop()


def test_automations_are_prefects_own_and_replaced_on_restart(
    operation: LocalOperation, inbox: tuple[Inbox, str]
) -> None:
    # The webhook URL (it may carry a token) is a secret of the block, not its visible URL field.
    status, docs = api.http_post_json(
        f"{operation.config.api_url}/block_documents/filter",
        {"block_documents": {"name": {"any_": ["stockflow-notifications"]}}},
    )
    assert status == 200 and len(docs) == 1, docs
    assert docs[0]["data"]["url"] == "{{webhook_url}}" and inbox[1] not in json.dumps(docs)
    status, autos = api.http_post_json(f"{operation.config.api_url}/automations/filter", {})
    assert status == 200
    ours = sorted(a["name"] for a in autos if a["name"].startswith(AUTOMATION_PREFIX))
    assert ours == [
        "stockflow: approval needed",
        "stockflow: run failed or crashed",
        "stockflow: trade not completed",
        "stockflow: trading HALTED",
    ]
    assert all(a["actions"][0]["type"] == "send-notification" for a in autos)
    # Setting up again (a restart) replaces them instead of adding more.
    from stockflow.ops.notify import setup_notifications

    assert operation.settings is not None
    setup_notifications(operation.settings, api_url=operation.config.api_url)
    status, again = api.http_post_json(f"{operation.config.api_url}/automations/filter", {})
    assert sorted(a["name"] for a in again if a["name"].startswith(AUTOMATION_PREFIX)) == ours


def test_paused_run_failed_run_halted_and_missing_completion_are_notified(
    operation: LocalOperation, inbox: tuple[Inbox, str]
) -> None:
    box, _ = inbox
    cfg = operation.config
    status, run = api.create_run(cfg.api_url, APPROVAL)
    assert status == 201
    api.wait_state(cfg.api_url, run["id"], ("PAUSED",), timeout=120)

    approval = box.wait_for("wait for approval")
    body = approval["body"]
    assert f"{cfg.ui_url}/runs/flow-run/{run['id']}" in body, body
    assert "AAPL: BUY 10 @ 150.00" in body and "UTC)" in body and ("EST" in body or "EDT" in body)
    assert approval["subject"].endswith(body.split("Deadline: ")[1].split(";")[0])  # ONE deadline
    assert approval["source"] == "stockflow-notifications"

    # The run stays paused: no Completed event within 15 s of its start (proactive trigger).
    late = box.wait_for("no completed trade run", timeout=120)
    assert f"/runs/flow-run/{run['id']}" in late["body"], late

    # A second run cannot take the lock and fails.
    status, second = api.create_run(cfg.api_url, APPROVAL)
    assert status == 201
    assert api.wait_state(cfg.api_url, second["id"], api.TERMINAL, timeout=120)["state"]["type"] == "FAILED"
    failed = box.wait_for("Failed")
    assert "another run holds" in failed["body"] and f"/runs/flow-run/{second['id']}" in failed["body"]

    # HALTED with the CLI, as a person does: it finds the running operation by its state file.
    env = {
        **os.environ,
        "PREFECT_HOME": str(cfg.prefect_home),
        "STOCKFLOW_DATABASE_URL": f"sqlite:///{cfg.prefect_home / 'halt.db'}",
    }
    env.pop("PREFECT_API_URL", None)
    cli = Path(sys.executable).with_name("stockflow")
    done = subprocess.run(
        [str(cli), "state", "set", "HALTED", "--reason", "test: stop everything", "--by", "pytest"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    halted = box.wait_for("trading HALTED")
    assert "test: stop everything" in halted["body"] and "pytest" in halted["body"]

    status, body2 = api.http_post_json(
        f"{cfg.api_url}/flow_runs/{run['id']}/resume", {"run_input": {"AAPL": "reject", "IBM": "reject"}}
    )
    assert status in (200, 201), body2
    api.wait_state(cfg.api_url, run["id"], api.TERMINAL, timeout=120)
    Path(cfg.prefect_home / "notifications.json").write_text(json.dumps(box.messages, indent=2))
