"""Flow runs on other machines: a deployment of the backtest flow run by a real ``prefect worker`` process
polling a process work pool, against the test Prefect API, with the state store in PostgreSQL and the
strategies fanned out to a Dask cluster (compute.dask_address), as on a worker host."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from stockflow.db import make_engine, transaction, upgrade
from stockflow.store.bars import store_bars
from tests.backtest.conftest import random_bars
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters

PREFECT = str(Path(sys.executable).parent / "prefect")


@pytest.mark.postgres
def test_a_process_worker_runs_the_backtest_deployment(
    prefect_api: None, _postgres_database: str, tmp_path: Path, dask_cluster: Any
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from stockflow.backtest.service import list_runs

    db_url = _postgres_database
    engine = make_engine(db_url)
    upgrade(engine)
    syms = ["AAA", "BBB", "CCC"]
    with transaction(engine) as s:
        store_bars(s, random_bars(syms, 400, seed=11), source="test", ingest_run_id=None)

    pool = f"stockflow-test-{uuid.uuid4().hex[:6]}"
    env = {
        "STOCKFLOW_DATABASE_URL": db_url,
        "STOCKFLOW_DATA_DIR": str(tmp_path / "shared" / "data"),  # the shared filesystem of the hosts
        "STOCKFLOW_REPORTS_DIR": str(tmp_path / "shared" / "reports"),
        "STOCKFLOW_CONFIG": os.environ["STOCKFLOW_CONFIG"],
        "STOCKFLOW_COMPUTE": json.dumps({"dask_address": dask_cluster.scheduler_address}),
    }
    with get_client(sync_client=True) as c:
        c.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        flow_id = c.create_flow_from_name("backtest")
        c.create_deployment(
            flow_id=flow_id,
            name="on-a-worker",
            entrypoint="flows/backtest.py:backtest_flow",
            work_pool_name=pool,
            path=str(ROOT),
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
            job_variables={"env": env},
        )
    worker_env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--limit", "1"],
        cwd=tmp_path,
        env=worker_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        run: Any = run_deployment(
            name="backtest/on-a-worker",
            parameters={"symbols": syms, "start": "2015-06-01", "end": "2016-05-31"},
            timeout=420,
        )
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    out = (tmp_path / "worker.log").read_text(errors="replace")
    assert run.state is not None and run.state.is_completed(), (run.state, out[-3000:])
    rows = list_runs(engine)
    assert len(rows) == 1 and rows[0].status == "succeeded" and rows[0].flow_run_id == str(run.id)
    assert rows[0].start == dt.date(2015, 6, 1) and rows[0].symbols == syms
    assert (tmp_path / "shared" / "reports" / "backtests" / rows[0].run_key / "tearsheet.html").is_file()
    with get_client(sync_client=True) as c:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        units = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    assert sorted(t.name for t in units if t.name.startswith("backtest ")) == [
        "backtest bollinger_zscore", "backtest ensemble", "backtest macd_trend", "backtest rsi_reversion",
        "backtest sma_crossover",
    ]  # fmt: skip
    engine.dispose()
