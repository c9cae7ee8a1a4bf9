"""The local operation for real: Prefect server + UI, served (stand-in) deployments, reports server.

One operation is started for the module (the expensive part, ~20-40 s on two busy cores); the last test
stops it, checks from Prefect's own database that it stopped cleanly, and starts it again on the same
database to show that nothing is duplicated.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockflow.ops.local import LocalOperation, OperationConfig, free_port, http_get, port_is_free
from tests.ops import api
from tests.ops.standin import LOCK

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters

ROOT = Path(__file__).resolve().parents[2]
APPROVAL = "standin-approval/standin-approval"
TYPED = "standin-typed/standin-typed"


def make_config(home: Path, reports: Path) -> OperationConfig:
    """A stand-in operation on free ports; runs are picked up within a second."""
    return OperationConfig(
        reports_dir=reports,
        prefect_home=home,
        prefect_port=free_port(),
        reports_port=free_port(),
        catalog="tests.ops.standin:CATALOG",
        stop_timeout_s=20,
        extra_env={"PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_LOGGING_LEVEL": "INFO"},
    )


@pytest.fixture(scope="module")
def operation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOperation]:
    home = tmp_path_factory.mktemp("prefect-home")
    reports = tmp_path_factory.mktemp("reports")
    (reports / "hello.html").write_text("<h1>hello</h1>")
    op = LocalOperation(make_config(home, reports))
    op.start()
    try:
        yield op
    finally:
        op.stop()


def test_start_serves_ui_reports_and_registers_deployments(operation: LocalOperation) -> None:
    cfg = operation.config
    t = operation.timings
    assert 0 < t["api_healthy_s"] <= t["ui_served_s"] <= t["deployments_ready_s"]
    status, body = http_get(cfg.ui_url + "/")
    assert status == 200 and b"<html" in body.lower()
    assert http_get(cfg.reports_url + "/hello.html") == (200, b"<h1>hello</h1>")

    typed = api.deployment(cfg.api_url, TYPED)
    assert not typed["paused"] and typed["parameters"] == {"mode": "hybrid"}
    (sched,) = typed["schedules"]
    assert sched["schedule"]["cron"] == "30 16 * * 1-5"
    assert sched["schedule"]["timezone"] == "America/New_York"
    approval = api.deployment(cfg.api_url, APPROVAL)
    assert approval["global_concurrency_limit"]["limit"] == 1
    assert approval["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert approval["entrypoint"] == "tests/ops/standin.py:approval_flow"  # relative, no machine path


def test_status_reports_what_runs(operation: LocalOperation) -> None:
    from stockflow.config import load_settings
    from stockflow.ops.status import collect_status, format_status

    st = collect_status(load_settings(), operation.config.prefect_home)  # ports from the state file
    assert st.api_ok and st.reports_ok and st.up_pid == os.getpid()
    text = format_status(st)
    assert "standin-typed/standin-typed" in text and "30 16 * * 1-5 (America/New_York)" in text
    # The next start with its zone (issue 11: the UI showed "04:30 PM" beside a UTC "09:30 PM").
    assert re.search(r"; next \d{4}-\d\d-\d\d 16:30 E[SD]T", text), text
    assert "at most 1 at a time" in text


def test_a_second_start_on_the_same_ports_is_refused_clearly(operation: LocalOperation) -> None:
    from stockflow.ops.local import OperationError

    with pytest.raises(OperationError, match=f"port {operation.config.prefect_port} .* already in use"):
        LocalOperation(operation.config).start()
    assert api.deployment(operation.config.api_url, TYPED), "the running operation is untouched"


def test_bad_parameter_is_refused_when_the_run_is_created(operation: LocalOperation) -> None:
    cfg = operation.config
    status, body = api.create_run(cfg.api_url, TYPED, {"mode": "bogus"})
    assert status == 409
    assert "mode" in body["detail"] and "'bogus' is not one of ['auto', 'manual', 'hybrid']" in body["detail"]
    # The same through Prefect's CLI, as a user types it.
    env = {**os.environ, "PREFECT_API_URL": cfg.api_url, "PREFECT_HOME": str(cfg.prefect_home)}
    cli = [sys.executable, "-m", "prefect", "deployment", "run", TYPED]
    pipe = {"env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    bad = subprocess.Popen([*cli, "--param", "mode=bogus"], **pipe)  # type: ignore[call-overload]
    good = subprocess.Popen(  # type: ignore[call-overload]
        [*cli, "--param", "mode=manual", "--param", 'symbols=["AAPL", "IBM"]'], **pipe
    )
    bad_out, _ = bad.communicate(timeout=120)
    good_out, _ = good.communicate(timeout=120)
    assert bad.returncode != 0, bad_out
    assert "Validation failed for field 'mode'" in bad_out and "Traceback" not in bad_out
    assert good.returncode == 0, good_out
    run_id = good_out.split("UUID:")[1].split()[0]
    run = api.wait_state(cfg.api_url, run_id, api.TERMINAL, timeout=120)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["parameters"] == {"mode": "manual", "symbols": ["AAPL", "IBM"]}


def test_paused_run_blocks_a_second_run_and_resumes_with_the_form_input(operation: LocalOperation) -> None:
    cfg = operation.config
    status, first = api.create_run(cfg.api_url, APPROVAL)
    assert status == 201
    api.wait_state(cfg.api_url, first["id"], ("PAUSED",), timeout=120)
    # Prefect's deployment concurrency limit frees its slot while a run is Paused, so a second run is
    # started; the global limit the flow holds across its pause makes it refuse.
    status, second = api.create_run(cfg.api_url, APPROVAL)
    assert status == 201
    refused = api.wait_state(cfg.api_url, second["id"], api.TERMINAL, timeout=120)
    assert refused["state"]["type"] == "FAILED"
    assert f"another run holds {LOCK}" in refused["state"]["message"]
    assert api.read_run(cfg.api_url, first["id"])["state"]["type"] == "PAUSED"

    status, body = api.http_post_json(
        f"{cfg.api_url}/flow_runs/{first['id']}/resume", {"run_input": {"AAPL": "approve", "IBM": "reject"}}
    )
    assert status in (200, 201) and body["status"] == "ACCEPT", body
    done = api.wait_state(cfg.api_url, first["id"], api.TERMINAL, timeout=120)
    assert done["state"]["type"] == "COMPLETED", done["state"]
    (table,) = [
        a for a in api.run_artifacts(cfg.api_url, first["id"]) if a["key"] == "standin-approval-decisions"
    ]
    assert '"decision": "approve"' in table["data"] and '"symbol": "AAPL"' in table["data"]


def test_stop_is_clean_and_a_restart_does_not_duplicate(operation: LocalOperation) -> None:
    cfg = operation.config
    ids = {name: api.deployment(cfg.api_url, name)["id"] for name in (APPROVAL, TYPED)}
    status, waiting = api.create_run(cfg.api_url, APPROVAL)
    assert status == 201, waiting
    api.wait_state(cfg.api_url, waiting["id"], ("PAUSED",), timeout=120)
    pids = [c.proc.pid for c in operation._children]

    codes = operation.stop()
    assert codes == {"serve": 0, "server": 0}, codes
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert port_is_free(cfg.host, cfg.prefect_port) and port_is_free(cfg.host, cfg.reports_port)
    with sqlite3.connect(cfg.prefect_home / "prefect.db") as db:
        paused = dict(db.execute("select id, paused from deployment").fetchall())
        assert all(paused[i] for i in ids.values()), "stopping pauses the deployments"
        state, message = db.execute(
            "select s.type, s.message from flow_run r join flow_run_state s on s.id = r.state_id "
            "where r.id = ?",
            (waiting["id"],),
        ).fetchone()
        assert state == "CANCELLED" and "stockflow down" in message
        future = db.execute(
            "select count(*) from flow_run where deployment_id = ? and state_type = 'SCHEDULED'",
            (ids[TYPED],),
        ).fetchone()[0]
        assert future == 0, "stopping deletes the future scheduled runs"

    # A trade run logs its signal drivers with non-ASCII text ("σ") into serve.log; the next start once
    # sliced the decoded log at its size in bytes, missed the "serving" line and timed out (issue 11).
    with (cfg.log_dir / "serve.log").open("a", encoding="utf-8") as log:
        log.write("AAPL BUY p=0.61 drivers: rsi_14 +2.1σ, ret_5d −1.3σ, ‘momentum’ ↑\n" * 3000)
    steps: list[str] = []
    again = LocalOperation(dataclasses.replace(operation.config, startup_timeout_s=150), on_step=steps.append)
    again.start()
    try:
        assert any("Prefect API healthy" in s for s in steps), steps
        assert any("deployment(s) registered" in s for s in steps), steps
        deployments = {d["full_name"]: d for d in api.read_deployments(cfg.api_url)}
        assert set(deployments) == {APPROVAL, TYPED}
        assert {n: d["id"] for n, d in deployments.items()} == ids, "same deployments, updated in place"
        assert len(deployments[TYPED]["schedules"]) == 1
        assert not any(d["paused"] for d in deployments.values()), "starting again resumes the schedules"
        assert api.read_run(cfg.api_url, waiting["id"])["state"]["type"] == "CANCELLED"
    finally:
        again.stop()
