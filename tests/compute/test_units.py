"""The walk-forward split into (kind, fold) units: plan, merge order and equality with the in-process
path, on a real LocalCluster of worker processes and in process."""

from __future__ import annotations

from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import Engine

from models.factory import effective_params
from stockflow.compute.executor import DaskExecutor, InlineExecutor
from stockflow.compute.walkforward import UnitRunner, fold_slice, plan_units
from stockflow.config import Settings
from stockflow.ml.retrain import FoldJob, evaluate_walk_forward, prepare_data, serial_runner, train_config
from stockflow.ml.training import Recipe, fold_predictions
from tests.models.conftest import small_settings, store


def _recipes() -> dict[str, Recipe]:
    members = {k: effective_params(k, {}) for k in ("lightgbm", "momentum")}
    return {
        "lightgbm": Recipe("lightgbm", effective_params("lightgbm", {})),
        "lstm": Recipe("lstm", {"epochs": 1}),
        "momentum_model": Recipe("momentum", effective_params("momentum", {})),
        "ensemble": Recipe("ensemble", {"members": members}),
    }


def test_an_ensemble_joins_the_unit_of_its_members_and_the_control_goes_with_lightgbm() -> None:
    specs = plan_units(_recipes(), "lightgbm")
    assert [s.names for s in specs] == [("lightgbm", "momentum_model", "ensemble"), ("lstm",)]
    assert [s.control for s in specs] == [True, False] and [s.baselines for s in specs] == [True, False]
    solo = plan_units({"m": Recipe("momentum", {})}, "lightgbm")
    assert len(solo) == 1 and solo[0].control and solo[0].baselines  # no lightgbm: control in the first
    two = plan_units({"a": Recipe("lightgbm", {}), "b": Recipe("momentum", {})}, "lightgbm")
    assert [(s.names, s.control) for s in two] == [(("a",), True), (("b",), False)]


def _data(tmp_path: Any, engine: Engine, bars: pl.DataFrame) -> tuple[Settings, Any]:
    settings = small_settings(tmp_path)
    store(engine, bars)
    return settings, prepare_data(settings, engine)


def _job(settings: Settings, data: Any) -> FoldJob:
    cfg = train_config(settings)
    recipes = {
        "lightgbm": Recipe("lightgbm", effective_params("lightgbm", {"num_boost_round": 30})),
        "momentum_model": Recipe("momentum", effective_params("momentum", {})),
        "champion[x]": Recipe("lightgbm", effective_params("lightgbm", {"num_boost_round": 20})),
    }
    return FoldJob(data.frame, recipes, cfg, {"champion[y]": "lightgbm"})


def test_units_on_a_local_cluster_give_the_in_process_frame(
    tmp_path: Any, sqlite_engine: Engine, reversal_bars: pl.DataFrame, dask_client: Any
) -> None:
    settings, data = _data(tmp_path, sqlite_engine, reversal_bars)
    job = _job(settings, data)
    expected = serial_runner(job, data.folds)
    on_cluster = UnitRunner(DaskExecutor(client=dask_client))(job, data.folds)
    inline = UnitRunner(InlineExecutor())(job, data.folds)
    assert len(expected) == len(on_cluster) == len(data.folds) == 2
    for want, got, here in zip(expected, on_cluster, inline, strict=True):
        assert_frame_equal(got, want)
        assert_frame_equal(here, want)
    # Both workers took part (the units of a fold are spread).
    assert len(dask_client.scheduler_info()["workers"]) == 2


def test_a_fold_slice_scores_like_the_whole_frame(
    tmp_path: Any, sqlite_engine: Engine, reversal_bars: pl.DataFrame
) -> None:
    settings, data = _data(tmp_path, sqlite_engine, reversal_bars)
    job = _job(settings, data)
    fold = data.folds[-1]
    sl = fold_slice(data.frame, fold)
    assert sl.height < data.frame.height
    assert_frame_equal(fold_predictions(sl, fold, job.recipes, job.cfg, aliases=job.aliases), job(fold))


def test_the_pooled_metrics_do_not_depend_on_the_runner(
    tmp_path: Any, sqlite_engine: Engine, reversal_bars: pl.DataFrame, dask_client: Any
) -> None:
    settings, data = _data(tmp_path, sqlite_engine, reversal_bars)
    cfg = train_config(settings)
    recipes = {"lightgbm": Recipe("lightgbm", effective_params("lightgbm", {"num_boost_round": 30}))}
    a = evaluate_walk_forward(data, recipes, cfg, None)
    b = evaluate_walk_forward(data, recipes, cfg, None, UnitRunner(DaskExecutor(client=dask_client)))
    assert_frame_equal(a[0], b[0])
    assert a[1] == b[1]
