"""The model benchmark's seeds on a real LocalCluster (one unit per seed) give the serial figures."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine

from bench.bench_models import run_seeds
from stockflow.compute.executor import DaskExecutor, InlineExecutor
from stockflow.ml.retrain import prepare_data
from tests.models.conftest import small_settings, store


def test_seeds_in_parallel_on_the_cluster_give_the_serial_figures(
    tmp_path: Any, sqlite_engine: Engine, reversal_bars: pl.DataFrame, dask_client: Any
) -> None:
    settings = small_settings(tmp_path)
    store(sqlite_engine, reversal_bars)
    data = prepare_data(settings, sqlite_engine)
    kw = {"seeds": [0, 1, 2], "kinds": ["lightgbm", "momentum"]}
    models = {"lgbm_num_boost_round": 20}
    serial = run_seeds(InlineExecutor(), data.frame, data.folds, settings, models, **kw)
    parallel = run_seeds(DaskExecutor(client=dask_client), data.frame, data.folds, settings, models, **kw)
    assert len(serial) == 3 and "lightgbm" in serial[0]
    assert repr(parallel) == repr(serial)  # NaN-safe, in seed order
