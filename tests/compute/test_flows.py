"""The retrain and backtest flows on Dask (prefect-dask's DaskTaskRunner) against a real Prefect API give
what they give in process: same walk-forward metrics, decision and registry rows; same backtest table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import select

from stockflow.config import load_settings
from stockflow.db import make_engine, transaction, upgrade
from stockflow.db.models_ml import ModelRecord, RetrainRun
from tests.models.conftest import SMALL_MODELS, SYMBOLS, store

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters

MODELS = {**SMALL_MODELS, "kinds": ["lightgbm", "momentum"], "lgbm_num_boost_round": 40}


def _env(monkeypatch: pytest.MonkeyPatch, root: Path, address: str | None) -> None:
    monkeypatch.setenv("STOCKFLOW_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("STOCKFLOW_REPORTS_DIR", str(root / "reports"))
    monkeypatch.setenv("STOCKFLOW_DATA__SYMBOLS", json.dumps(list(SYMBOLS)))
    monkeypatch.setenv("STOCKFLOW_MODELS", json.dumps(MODELS))
    if address is None:
        monkeypatch.delenv("STOCKFLOW_COMPUTE", raising=False)
    else:
        monkeypatch.setenv(
            "STOCKFLOW_COMPUTE",
            json.dumps({"dask_address": address, "local_workers": 2, "dashboard_address": ":0"}),
        )


def retrain_in(
    monkeypatch: pytest.MonkeyPatch, root: Path, bars: pl.DataFrame, address: str | None
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, str]], dict[str, pl.DataFrame]]:
    """Run the retrain flow in a fresh store under ``root``; returns the summary, the run's stored metrics,
    the registry rows (kind, status, reason) and each final model's drift reference (its predictions on
    its validation rows) by kind."""
    from flows.retrain import retrain_flow

    _env(monkeypatch, root, address)
    engine = make_engine(load_settings().db_url)
    upgrade(engine)
    store(engine, bars)
    out = retrain_flow()
    with transaction(engine) as s:
        run = s.scalars(select(RetrainRun)).one()
        rows = [
            (r.kind, r.status, r.reason or "")
            for r in s.scalars(select(ModelRecord).order_by(ModelRecord.id))
        ]
        metrics = dict(run.metrics or {})
        refs = {
            r.kind: pl.read_parquet(Path(r.artifact_path) / "reference.parquet")
            for r in s.scalars(select(ModelRecord))
        }
    engine.dispose()
    return out, metrics, rows, refs


def task_runs(flow_run_id: str) -> list[tuple[str, str]]:
    """(name, state name) of every task run of a flow run, sorted."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted((r.name, r.state_name or "") for r in runs)


def last_flow_run_id() -> str:
    """Flow run id of the retrain run in the current settings' store."""
    with transaction(make_engine(load_settings().db_url)) as s:
        return str(s.scalars(select(RetrainRun)).one().flow_run_id)


def _task_names(flow_run_id: str) -> list[str]:
    return [n for n, _ in task_runs(flow_run_id)]


def test_retrain_on_a_local_cluster_decides_like_in_process(
    in_process: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reversal_bars: pl.DataFrame
) -> None:
    monkeypatch.chdir(tmp_path)
    here = in_process
    dask = retrain_in(monkeypatch, tmp_path / "dask", reversal_bars, "local")
    assert dask[0]["promoted"] == here[0]["promoted"] and dask[0]["reason"] == here[0]["reason"]
    assert dask[1] == here[1]  # every pooled metric of every model, baseline and control
    assert dask[2] == here[2]  # registry rows: kinds, statuses, gate reasons
    assert len(dask[2]) == 2
    # The final models are fitted on the workers (one unit per kind) and are the same models: the same
    # predictions on the same reference rows.
    assert sorted(dask[3]) == sorted(here[3]) == ["lightgbm", "momentum"]
    for kind, ref in here[3].items():
        assert_frame_equal(dask[3][kind], ref, check_exact=True)
    # The features went through the chunked store under data_dir, removed at the end of the run.
    parts = list((tmp_path / "dask" / "data" / "features").glob("*/parts/*"))
    assert parts == [], parts
    names = _task_names(last_flow_run_id())
    assert (
        sorted(n for n in names if n.startswith("final fit"))
        == [
            "final fit {'lightgbm': Recipe(kind='lightgbm', params={...})}",
        ]
        or len([n for n in names if n.startswith("final fit")]) == 2
    ), names
    # One task per (kind, fold): lightgbm with the shuffled-label control, momentum on its own.
    units = [n for n in names if n.startswith("walk-forward")]
    assert units == [
        "walk-forward lightgbm+control fold 0",
        "walk-forward lightgbm+control fold 1",
        "walk-forward momentum_model fold 0",
        "walk-forward momentum_model fold 1",
    ], names


def test_backtest_on_the_cluster_gives_the_in_process_table(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dask_cluster: Any
) -> None:
    import datetime as dt

    from flows.backtest import backtest_flow
    from stockflow.store.bars import store_bars
    from tests.backtest.conftest import random_bars

    monkeypatch.chdir(tmp_path)
    syms = ["AAA", "BBB", "CCC"]
    tables = []
    for name, address in (("inproc", None), ("dask", dask_cluster.scheduler_address)):
        _env(monkeypatch, tmp_path / name, address)
        engine = make_engine(load_settings().db_url)
        upgrade(engine)
        with transaction(engine) as s:
            store_bars(s, random_bars(syms, 400, seed=11), source="test", ingest_run_id=None)
        out = backtest_flow(symbols=syms, start=dt.date(2015, 6, 1), end=dt.date(2016, 5, 31))
        tables.append(pl.read_csv(out["comparison_csv"]))
        engine.dispose()
    assert tables[0].height == (5 + 2) * 2
    assert tables[0].equals(tables[1])
