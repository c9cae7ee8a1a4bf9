"""Security: loopback by default, no exposure without API auth, and no secret in logs, artifacts or
deployment parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from stockflow.errors import ConfigError
from stockflow.ops.local import OperationConfig, child_env
from stockflow.ops.security import (
    SERVER_AUTH_ENV,
    check_bind,
    find_secrets,
    is_loopback,
    secret_values,
)
from tests.fakes.alpaca_trading import API_KEY, SECRET_KEY, FakeAlpacaTrading

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposing_the_server_needs_an_auth_string() -> None:
    check_bind("127.0.0.1", {})
    with pytest.raises(ConfigError, match=SERVER_AUTH_ENV):
        check_bind("0.0.0.0", {})
    with pytest.raises(ConfigError, match="user:password"):
        check_bind("0.0.0.0", {SERVER_AUTH_ENV: "no-colon-here"})
    check_bind("0.0.0.0", {SERVER_AUTH_ENV: "admin:a-long-random-password"})


def test_children_get_telemetry_off_and_the_client_auth_string(tmp_path: Path) -> None:
    cfg = OperationConfig(reports_dir=tmp_path, prefect_home=tmp_path, host="0.0.0.0", prefect_port=4999)
    env = child_env(cfg, base={SERVER_AUTH_ENV: "admin:pw-123456789", "DO_NOT_TRACK": "0"})
    assert env["DO_NOT_TRACK"] == "1" and env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_API_AUTH_STRING"] == "admin:pw-123456789"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4999/api"
    assert env["PREFECT_UI_API_URL"] == "/api"  # browsers elsewhere call the address they reached
    assert env["PREFECT_HOME"] == str(tmp_path)
    # Flows build report links from server.host: not 0.0.0.0, which no browser can open.
    assert env["STOCKFLOW_SERVER__HOST"] not in ("0.0.0.0", "") and env["STOCKFLOW_SERVER__REPORTS_PORT"]


def test_stockflow_up_refuses_to_expose_without_auth(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (SERVER_AUTH_ENV, "PREFECT_API_AUTH_STRING")}
    env["PREFECT_HOME"] = str(tmp_path / ".prefect")
    stockflow = str(Path(sys.executable).with_name("stockflow"))
    res = subprocess.run(
        [stockflow, "up", "--host", "0.0.0.0"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "refusing to expose the Prefect server on 0.0.0.0" in res.stderr
    assert SERVER_AUTH_ENV in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / ".prefect" / "logs" / "server.log").exists(), "nothing was started"
    assert not (tmp_path / "data").exists(), "not even the state store"


def test_secret_scanner_names_secrets_not_values() -> None:
    secrets = secret_values({"APCA_API_SECRET_KEY": "s3cr3t-value-xyz", "ALPACA_API_KEY": "short"})
    assert secrets == {"APCA_API_SECRET_KEY": "s3cr3t-value-xyz"}  # too-short values are not scanned
    leaks = find_secrets({"log 1": "ok", "artifact x": "key=s3cr3t-value-xyz"}, secrets)
    assert [(x.secret_name, x.where) for x in leaks] == [("APCA_API_SECRET_KEY", "artifact x")]
    assert "s3cr3t" not in repr(leaks)


@pytest.fixture
def alpaca_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAlpacaTrading]:
    """Real-looking Alpaca keys in the environment (settings and alpaca-py's own variables), the alpaca
    broker pointed at the wire-level fake, and state in a temp dir."""
    with FakeAlpacaTrading(prices={"AAPL": 150.0}) as fake:
        env = {
            "STOCKFLOW_DATA_DIR": str(tmp_path / "data"),
            "STOCKFLOW_REPORTS_DIR": str(tmp_path / "reports"),
            "STOCKFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'stockflow.db'}",
            "STOCKFLOW_BROKER__KIND": "alpaca",
            "STOCKFLOW_BROKER__ALPACA_API_KEY": API_KEY,
            "STOCKFLOW_BROKER__ALPACA_SECRET_KEY": SECRET_KEY,
            "STOCKFLOW_BROKER__ALPACA_URL_OVERRIDE": fake.url,
            "APCA_API_KEY_ID": API_KEY,
            "APCA_API_SECRET_KEY": SECRET_KEY,
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield fake


@pytest.mark.usefixtures("prefect_api")
def test_no_secret_in_logs_artifacts_or_deployment_parameters(alpaca_env: FakeAlpacaTrading) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.settings import PREFECT_API_URL

    from deployments.serve import build_deployments

    secrets = secret_values()
    assert set(secrets) >= {"STOCKFLOW_BROKER__ALPACA_SECRET_KEY", "APCA_API_KEY_ID"}
    # The flow runs in a fresh interpreter against this test's Prefect API, as a served deployment
    # would: what other tests left in this process's logging state cannot hide (or fake) its logs.
    # Every line is shipped to the API, debug level included.
    script = (
        "from flows.kill_switch import kill_switch_flow\n"
        "s = kill_switch_flow(state='HALTED', reason='secret scan', return_state=True)\n"
        "print('FLOW_RUN', s.state_details.flow_run_id, s.type.value)\n"
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PYTHONPATH": str(ROOT),
    }
    res = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((x for x in res.stdout.splitlines() if x.startswith("FLOW_RUN ")), None)
    assert line is not None and line.endswith(" COMPLETED"), res.stdout[-2000:] + res.stderr[-2000:]
    flow_run_id = UUID(line.split()[1])
    # The keys were really used: the broker was called with them (the fake refuses anything else).
    assert any(path.endswith("/orders") for _, path, _ in alpaca_env.requests), alpaca_env.requests
    texts: dict[str, str] = {"flow process output": res.stdout + res.stderr}
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        texts["flow run (parameters, state, tags)"] = run.model_dump_json()
        # The batch can still be in flight on a busy machine: wait (bounded) for the run's last line.
        deadline = time.monotonic() + 30
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            seen = any("trading state is now HALTED" in log.message for log in logs)
            if seen or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for i, log in enumerate(logs):
            texts[f"log {i} ({log.name})"] = log.message
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        for a in arts:
            texts[f"artifact {a.key or a.id}"] = json.dumps(a.data, default=str) + (a.description or "")
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        for t in task_runs:
            texts[f"task run {t.name}"] = t.model_dump_json()
    assert any("trading state is now HALTED" in t for t in texts.values()), "the run's logs were not read"

    # Every deployment as it would be registered, with these secrets in the environment.
    deployments, failures = build_deployments()
    assert not failures, failures
    for d in deployments:
        texts[f"deployment {d.name}"] = json.dumps(
            {
                "parameters": d.parameters,
                "schema": d._parameter_openapi_schema.model_dump(mode="json"),
                "description": d.description,
                "tags": d.tags,
            },
            default=str,
        )
    texts["prefect.yaml"] = (ROOT / "prefect.yaml").read_text()

    leaks = find_secrets(texts, secrets)
    assert not leaks, [f"{x.secret_name} found in {x.where}" for x in leaks]
