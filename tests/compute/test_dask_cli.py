"""The retrain flow on a cluster started with the ``dask`` CLI (one ``dask scheduler`` and two
``dask worker`` processes on loopback), and a worker killed mid-task: the unit is computed again on the
other worker and the run ends exactly as in process, with no duplicate registry row or partial file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.compute.test_flows import last_flow_run_id, retrain_in, task_runs

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters

DASK = str(Path(sys.executable).parent / "dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cli_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker --no-nanny`` processes (a killed worker stays dead)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "dask.log").open("wb")
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ]
    for i in range(2):
        cmd = [DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--name", f"w{i}"]
        cmd += ["--local-directory", str(tmp_path / f"w{i}"), "--dashboard-address", ":0"]
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout=5) as c:
                    c.wait_for_workers(2, timeout=max(deadline - time.monotonic(), 1))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def _kill_a_busy_worker(address: str, killed: list[int], stop: threading.Event) -> None:
    """Wait until a walk-forward unit runs on a worker, then SIGKILL that worker process."""
    from distributed import Client

    with Client(address, timeout=30) as c:
        while not stop.is_set():
            busy = {w: ks for w, ks in c.processing().items() if any("run_unit" in str(k) for k in ks)}
            if busy:
                time.sleep(0.3)  # well inside the unit
                worker = next(iter(busy))
                pid = int(c.run(os.getpid, workers=[worker])[worker])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)


def test_retrain_on_dask_cli_workers_survives_a_worker_killed_mid_task(
    in_process: Any,
    cli_cluster: tuple[str, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reversal_bars: pl.DataFrame,
) -> None:
    """The flow runs its units on the CLI-started workers; one worker is SIGKILLed while it runs a unit:
    Dask computes the unit again on the survivor (the Prefect task run id is the same, so no duplicate
    task run either) and the outcome equals the in-process run."""
    from stockflow.config import load_settings
    from stockflow.db import make_engine
    from stockflow.ml import registry

    address, workers = cli_cluster
    monkeypatch.chdir(tmp_path)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_busy_worker, args=(address, killed, stop), daemon=True)
    killer.start()
    try:
        got = retrain_in(monkeypatch, tmp_path / "kill", reversal_bars, address)
    finally:
        stop.set()
        killer.join(timeout=30)
    # The killed process was one of our two `dask worker` processes, and it is dead.
    assert killed and any(p.pid == killed[0] and p.wait(timeout=10) != 0 for p in workers)
    # Same outcome as in process: metrics, decision, registry rows (one per kind, no duplicate).
    assert got[0]["reason"] == in_process[0]["reason"] and got[1] == in_process[1]
    assert got[2] == in_process[2]
    # One task run per unit, all completed: the re-run kept the task run id (no duplicate, no orphan).
    units = [(n, st) for n, st in task_runs(last_flow_run_id()) if n.startswith("walk-forward")]
    assert len(units) == 4 and len({n for n, _ in units}) == 4 and {st for _, st in units} == {"Completed"}
    engine = make_engine(load_settings().db_url)
    entries = registry.list_models(engine)
    assert sorted(e.kind for e in entries) == ["lightgbm", "momentum"]
    # Model folders: exactly the registered versions, each complete (workers write no files).
    models_dir = tmp_path / "kill" / "data" / "models"
    assert sorted(p.name for p in models_dir.iterdir()) == sorted(e.version for e in entries)
    for e in entries:
        assert (Path(e.artifact_path) / "card.json").is_file()
        assert (Path(e.artifact_path) / "reference.parquet").is_file()
    assert not list(models_dir.rglob("*.tmp")) and not list(models_dir.rglob("*.partial"))
