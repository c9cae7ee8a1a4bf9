"""Features in chunks and strategies in parallel on a real LocalCluster give the in-process results."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from stockflow.backtest.runner import build_signals, compare, run_comparison
from stockflow.compute.backtest import parallel_compare, parallel_comparison
from stockflow.compute.executor import DaskExecutor, InlineExecutor
from stockflow.compute.features import build_features_report, chunks_of
from stockflow.config import Settings
from stockflow.config.sections import FeatureSettings
from stockflow.features import build_features_report as in_process
from tests.backtest.conftest import random_bars

SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE")


def _bars() -> pl.DataFrame:
    bars = random_bars(SYMBOLS, 320, seed=3)
    # One symbol that must be skipped (a non-positive price) and the rows shuffled: the chunked path
    # must sort and report exactly like the in-process one.
    bad = random_bars(("BAD",), 320, seed=4).with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(-1.0).otherwise(pl.col("close")).alias("close")
    )
    return pl.concat([bars, bad]).sample(fraction=1.0, shuffle=True, seed=1)


def test_chunks_hold_whole_symbols_in_order() -> None:
    parts = chunks_of(_bars(), 2)
    assert [p.get_column("symbol").unique(maintain_order=True).to_list() for p in parts] == [
        ["AAA", "BAD"],
        ["BBB", "CCC"],
        ["DDD", "EEE"],
    ]


def test_features_in_chunks_on_the_cluster_equal_the_in_process_frame(dask_client: Any) -> None:
    bars, fs = _bars(), FeatureSettings()
    want = in_process(bars, fs)
    got = build_features_report(bars, fs, chunk_symbols=2, client=dask_client)
    assert_frame_equal(got.frame, want.frame)
    assert got.skipped == want.skipped and "BAD" in got.skipped
    # Without a cluster in reach the in-process function runs (no client: no Dask).
    assert_frame_equal(build_features_report(bars, fs, chunk_symbols=2).frame, want.frame)


def test_strategies_in_parallel_on_the_cluster_give_the_same_equity(
    settings: Settings, dask_client: Any
) -> None:
    from stockflow.backtest.config import BacktestConfig

    bars = random_bars(SYMBOLS, 400, seed=11)
    start, end = dt.date(2015, 6, 1), dt.date(2016, 5, 31)
    names = ["sma_crossover", "rsi_reversion", "macd_trend", "bollinger_zscore", "ensemble"]
    signals, params = build_signals(names, bars, settings, start=start, end=end)
    config = BacktestConfig.from_settings(settings, costs=True)
    want = compare(bars, signals, config, start=start, end=end, params=params)
    for executor in (DaskExecutor(client=dask_client), InlineExecutor()):
        got = parallel_compare(executor)(bars, signals, config, start=start, end=end, params=params)
        assert list(got.results) == names and list(got.benchmarks) == list(want.benchmarks)
        assert_frame_equal(got.table(), want.table())
        for name in names:
            for costs in ("on", "off"):
                a, b = got.results[name][costs], want.results[name][costs]
                assert_frame_equal(a.equity, b.equity)
    via_runner = run_comparison(
        bars, settings, strategies=names, start=start, end=end, compare_fn=parallel_compare(InlineExecutor())
    )
    assert np.allclose(via_runner.table()["final_equity"].to_numpy(), want.table()["final_equity"].to_numpy())


@pytest.mark.parametrize(
    "names",
    [
        ["sma_crossover", "rsi_reversion", "macd_trend", "bollinger_zscore", "ensemble"],
        ["ensemble", "rsi_reversion"],  # the members it needs are built, not reported
    ],
)
def test_signals_built_on_the_cluster_give_the_in_process_comparison(
    settings: Settings, dask_client: Any, names: list[str]
) -> None:
    bars = random_bars(SYMBOLS, 400, seed=11)
    start, end = dt.date(2015, 6, 1), dt.date(2016, 5, 31)
    want = run_comparison(bars, settings, strategies=names, start=start, end=end)
    for executor in (DaskExecutor(client=dask_client), InlineExecutor()):
        got = parallel_comparison(executor)(bars, settings, strategies=names, start=start, end=end)
        assert list(got.results) == names and list(got.benchmarks) == list(want.benchmarks)
        assert got.params == want.params
        assert_frame_equal(got.table(), want.table())
        for name in names:
            for costs in ("on", "off"):
                a, b = got.results[name][costs], want.results[name][costs]
                assert_frame_equal(a.equity, b.equity)
                assert_frame_equal(a.fills, b.fills)


def test_the_backtest_cli_on_the_cluster_prints_the_in_process_table(
    settings: Settings, monkeypatch: Any, dask_cluster: Any
) -> None:
    from typer.testing import CliRunner

    from stockflow.cli import app
    from stockflow.db import make_engine, transaction, upgrade
    from stockflow.store.bars import store_bars

    monkeypatch.setenv("STOCKFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("STOCKFLOW_REPORTS_DIR", str(settings.reports_dir))
    engine = make_engine(settings.db_url)
    upgrade(engine)
    with transaction(engine) as s:
        store_bars(s, random_bars(SYMBOLS, 400, seed=11), source="test", ingest_run_id=None)
    args = ["backtest", "--symbols", ",".join(SYMBOLS), "--start", "2015-06-01", "--end", "2016-03-31"]
    here = CliRunner().invoke(app, [*args, "--no-report"])
    monkeypatch.setenv("STOCKFLOW_COMPUTE__DASK_ADDRESS", dask_cluster.scheduler_address)
    there = CliRunner().invoke(app, [*args, "--no-report"])
    assert here.exit_code == 0 and there.exit_code == 0, (here.output, there.output)

    def table(out: str) -> list[str]:  # the scheduler of the test's cluster logs into the same stream
        return [line for line in out.splitlines() if "distributed." not in line]

    assert table(here.output) == table(there.output) and "ensemble" in here.output
