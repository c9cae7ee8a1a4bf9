"""Processes that die: runs they left ``running`` are marked crashed on the next start (both
backends), ``approve`` refuses a paused run whose process is dead, and the temporary Prefect server of
a killed command does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from stockflow.crashed import mark_crashed_runs, trade_run_owner_alive
from stockflow.db.models_data import IngestRun
from stockflow.db.models_pipeline import TradeRun
from stockflow.pipeline.approval import ApprovalError
from tests.conftest import ROOT

_START_RUNS = """
import sys, time
from stockflow.config import load_settings
from stockflow.db import make_engine
from stockflow.ingest import begin_ingest
from stockflow.pipeline.trade_records import start_trade_run
engine = make_engine(sys.argv[1])
begin_ingest(load_settings(), engine, source="sample")
start_trade_run(engine, flow_run_id="fr-killed", mode="hybrid", signal_source="champion")
print("started", flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_runs_of_a_killed_process_are_marked_crashed(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STOCKFLOW_CONFIG": ""}
    proc = subprocess.Popen(
        [sys.executable, "-c", _START_RUNS, url], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    assert mark_crashed_runs(engine, prefect=False) == []  # alive: left alone
    alive, _ = trade_run_owner_alive(engine, "fr-killed")
    assert alive is True
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    from stockflow.cli.pipeline import check_run_alive

    with pytest.raises(ApprovalError, match=r"its process .* is dead, so nothing would be sent"):
        check_run_alive("fr-killed", engine)  # approve says so (and marks the run crashed)
    crashed = mark_crashed_runs(engine, prefect=False)
    with engine.connect() as conn:
        ingest = conn.execute(select(IngestRun.status, IngestRun.error)).one()
        trade = conn.execute(select(TradeRun.status, TradeRun.message)).one()
    assert crashed == []  # already marked by the approve check, once
    assert ingest.status == "crashed" and "marked crashed" in (ingest.error or "")
    assert trade.status == "crashed" and f"process {proc.pid}" in trade.message


_PARENT = """
import subprocess, sys, os, time
child = subprocess.Popen([sys.executable, "-m", "stockflow.orphans", str(os.getpid()),
                          "http.server", "0", "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_guarded_server_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True, env=env)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    assert not _gone(child)
    parent.send_signal(signal.SIGKILL)  # like kill -9 of a `stockflow ingest`
    parent.wait()
    deadline = time.monotonic() + 20
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _gone(child), "the guarded server outlived its killed parent"


def test_prefect_temporary_server_is_started_through_the_guard() -> None:
    from stockflow.orphans import _guarded_args, _SubprocessShim, guard_ephemeral_server

    guard_ephemeral_server()
    from prefect.server.api import server

    assert isinstance(server.subprocess, _SubprocessShim)
    args = _guarded_args([sys.executable, "-m", "uvicorn", "--port", "8123"])
    assert args == [sys.executable, "-m", "stockflow.orphans", str(os.getpid()), "uvicorn", "--port", "8123"]
    assert server.subprocess.TimeoutExpired is subprocess.TimeoutExpired


def test_sigterm_unwinds_the_cli(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, signal, sys
        from stockflow.cli import _terminate
        signal.signal(signal.SIGTERM, _terminate)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            import time; time.sleep(5)
        except KeyboardInterrupt as err:
            print("unwound:", err)
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=60,
    )
    assert "unwound: terminated by signal 15" in res.stdout, res.stderr


def test_a_reused_run_id_replaces_its_stale_owner(sqlite_engine: Engine) -> None:
    from stockflow.crashed import claim_run, run_owner
    from stockflow.db import transaction

    for flow_run in ("first", "second"):  # e.g. trade_runs emptied by hand: ids start again at 1
        with transaction(sqlite_engine) as s:
            claim_run(s, "trade", 1, flow_run)
    assert run_owner(sqlite_engine, "trade", 1) is not None
    alive, _ = trade_run_owner_alive(sqlite_engine, "second")
    assert alive is True
