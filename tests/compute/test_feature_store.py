"""The chunked feature store of a retrain on a cluster (issue 14): the workers write the features per
chunk of symbols under ``data_dir``, each walk-forward unit and each final fit reads only its sessions on
its worker, and the results equal the in-memory path exactly: same frame, predictions, metrics, models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import Engine

from models.factory import effective_params
from stockflow.compute.executor import DaskExecutor
from stockflow.compute.features import build_features_to_store
from stockflow.compute.walkforward import UnitRunner
from stockflow.config import Settings
from stockflow.features import build_features_report as in_process
from stockflow.features.parquet import ChunkStore, discard_chunks
from stockflow.ml.retrain import (
    PreparedData,
    evaluate_walk_forward,
    prepare_data,
    serial_runner,
    train_config,
)
from stockflow.ml.retrain_data import final_here
from stockflow.ml.training import Recipe
from tests.models.conftest import small_settings, store


def _stored(settings: Settings, bars: pl.DataFrame, client: Any, tmp_path: Path) -> ChunkStore:
    out = build_features_to_store(bars, settings.features, tmp_path / "parts", chunk_symbols=1, client=client)
    assert len(out.store.files) == bars.get_column("symbol").n_unique()  # one file per chunk
    return out.store


def test_features_written_per_chunk_by_the_workers_read_back_as_the_in_memory_frame(
    tmp_path: Path, reversal_bars: pl.DataFrame, dask_client: Any
) -> None:
    settings = small_settings(tmp_path)
    want = in_process(reversal_bars, settings.features).frame
    st = _stored(settings, reversal_bars, dask_client, tmp_path)
    assert_frame_equal(st.read(), want, check_exact=True)
    # A window of sessions: its rows, with the cross-sectional labels and ranks of whole sessions.
    days = want.get_column("session").unique().sort()
    lo, hi = days[300], days[420]
    part = want.filter((pl.col("session") >= lo) & (pl.col("session") <= hi))
    assert_frame_equal(st.read(lo, hi), part, check_exact=True)
    discard_chunks(st)
    assert not Path(st.directory).exists()


def test_walk_forward_and_final_fits_from_the_store_equal_the_in_memory_path(
    tmp_path: Path, sqlite_engine: Engine, reversal_bars: pl.DataFrame, dask_client: Any
) -> None:
    settings = small_settings(tmp_path)
    store(sqlite_engine, reversal_bars)
    data = prepare_data(settings, sqlite_engine)  # no cluster in reach: the frame in memory
    assert data.frame is not None and data.store is None
    st = _stored(settings, reversal_bars, dask_client, tmp_path)
    stored = PreparedData(None, data.symbols, data.skipped, data.folds, st)
    cfg = train_config(settings)
    members = {k: effective_params(k, {"num_boost_round": 30}) for k in ("lightgbm",)}
    members["momentum"] = effective_params("momentum", {})
    recipes = {
        "lightgbm": Recipe("lightgbm", members["lightgbm"]),
        "momentum_model": Recipe("momentum", members["momentum"]),
        "ensemble": Recipe("ensemble", {"members": members}),
    }
    runner = UnitRunner(DaskExecutor(client=dask_client))
    want = evaluate_walk_forward(data, recipes, cfg, None, serial_runner)
    for got in (
        evaluate_walk_forward(stored, recipes, cfg, None, runner),  # units read their sessions on workers
        evaluate_walk_forward(stored, recipes, cfg, None, serial_runner),  # or here, fold by fold
    ):
        assert_frame_equal(got[0], want[0], check_exact=True)
        assert got[1] == want[1]

    days = settings.models.train_window_days
    here = final_here(data.frame, recipes, cfg, days)
    on_cluster = runner.final(st, recipes, cfg, days)  # one unit per recipe group, reading the store
    assert list(on_cluster.models) == list(here.models) == ["lightgbm", "momentum_model", "ensemble"]
    assert (on_cluster.train_start, on_cluster.train_end) == (here.train_start, here.train_end)
    for name, model in here.models.items():
        ref = here.references[name]
        assert_frame_equal(on_cluster.references[name], ref, check_exact=True)
        X = ref.select(list(cfg.feature_columns)).to_numpy()
        groups = ref.get_column("symbol").to_numpy()
        np.testing.assert_array_equal(
            on_cluster.models[name].predict_proba(X, groups=groups), model.predict_proba(X, groups=groups)
        )
