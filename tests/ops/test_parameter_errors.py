"""A run created with parameter validation off (the UI's custom run with "Validate parameters" unticked,
the API's ``enforce_parameter_schema: false``) and parameters of the wrong type: the run fails with one
line naming the parameter and what was wrong, and no traceback (issue 11: it logged Prefect's
"Engine execution exited with unexpected exception" and a ``ParameterTypeError`` traceback).

The project's real serve process (``python -m deployments.serve``, what ``stockflow up`` starts) serves
the catalog's deployments against the tests' Prefect API; the runs are created through that API and run
as served runs do (a spawned process per run); their logs are read back from the API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops import api

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m deployments.serve`` on the tests' Prefect API; the API's URL."""
    from prefect.settings import PREFECT_API_URL

    api_url = str(PREFECT_API_URL.value())
    out = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "STOCKFLOW_DATA_DIR": str(out.parent / "data"),
        "STOCKFLOW_REPORTS_DIR": str(out.parent / "reports"),
    }
    ready = out.with_name("ready.json")
    with out.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "--ready-file", str(ready)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        wanted = {"trade/trade", "monitor/monitor", "kill-switch/kill-switch"}
        # The ready file comes just before serve() registers the deployments: wait for the API's list.
        while not (ready.exists() and wanted <= {d["full_name"] for d in api.read_deployments(api_url)}):
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.5)
        yield api_url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run_logs(api_url: str, flow_run_id: str, want: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        status, logs = api.http_post_json(
            f"{api_url}/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
        )
        assert status == 200, logs
        messages = [str(log["message"]) for log in logs]
        if any(want in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


#: (deployment, parameters of the wrong type, what its one line says)
CASES = [
    ("trade/trade", {"mode": "sideways"}, "mode: Input should be 'auto', 'manual' or 'hybrid'"),
    ("monitor/monitor", {"symbols": 5}, "symbols: Input should be a valid list"),
    ("kill-switch/kill-switch", {"state": "OFF"}, "state: Input should be 'ACTIVE', 'REDUCING' or 'HALTED'"),
]


def test_runs_with_validation_off_fail_in_one_line(served: str) -> None:
    # The three runs are created at once (each is a spawned process: they start side by side).
    runs = []
    for deployment, parameters, says in CASES:
        status, run = api.create_run(served, deployment, parameters, validate=False)
        assert status == 201, run
        runs.append((deployment, run["id"], says))
    for deployment, run_id, says in runs:
        done = api.wait_state(served, run_id, api.TERMINAL, timeout=300)
        assert done["state"]["type"] == "FAILED", (deployment, done["state"])
        messages = _run_logs(served, run_id, "invalid flow run parameters")
        text = "\n".join(messages)
        lines = [m for m in messages if "invalid flow run parameters" in m]
        assert len(lines) == 1, (deployment, text)
        assert says in lines[0] and "\n" not in lines[0], lines[0]
        assert "the run did not start" in lines[0], lines[0]
        assert "Traceback" not in text, (deployment, text)
