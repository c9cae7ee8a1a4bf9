"""The features stage end to end: bars in the database -> features parquet, as a function, a Prefect
task inside a real flow run, and the CLI."""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine
from typer.testing import CliRunner

from stockflow.config import Settings
from stockflow.db import transaction
from stockflow.errors import ConfigError
from stockflow.features import FEATURE_SET_VERSION, MIN_HISTORY, build_features, load_features
from stockflow.features.run import compute_and_store
from stockflow.features.spec import STABILITY_ATOL
from stockflow.store.bars import store_bars


def _store(engine: Engine, bars: pl.DataFrame) -> None:
    with transaction(engine) as session:
        store_bars(session, bars, source="test", ingest_run_id=None)


def test_compute_and_store_from_the_database(engine: Engine, settings: Settings, panel: pl.DataFrame) -> None:
    bars = panel.filter(pl.col("session") >= dt.date(2009, 1, 1))
    tiny = bars.filter(pl.col("symbol") == "IBM").head(40).with_columns(pl.lit("TINY").alias("symbol"))
    _store(engine, pl.concat([bars, tiny]))
    start = dt.date(2011, 1, 3)
    run, result = compute_and_store(settings, engine, ["AAPL", "IBM", "MSFT", "TINY", "NOPE"], start, None)
    assert run.symbols == ["AAPL", "IBM", "MSFT"]
    assert set(run.skipped) == {"TINY", "NOPE"} and "no stored bars" in run.skipped["NOPE"]
    assert run.first_session == start and run.path is not None
    # History before start was loaded, so every row from start on is past the warm-up.
    assert run.usable_rows == run.rows
    stored = load_features(settings)
    assert stored.equals(result.frame)
    # The same as building from a longer history, within the warm-up stability tolerance.
    direct = build_features(bars.filter(pl.col("symbol").is_in(["AAPL", "IBM", "MSFT"])), settings.features)
    assert_frame_equal(
        stored, direct.filter(pl.col("session") >= start), check_exact=False, abs_tol=STABILITY_ATOL
    )


def test_too_short_window_stores_nothing(
    sqlite_engine: Engine, settings: Settings, aapl: pl.DataFrame
) -> None:
    _store(sqlite_engine, aapl.head(MIN_HISTORY - 10))
    run, _ = compute_and_store(settings, sqlite_engine, ["AAPL"])
    assert run.path is None and run.rows == 0 and "too little history" in run.skipped["AAPL"]


def test_task_runs_inside_a_flow(
    prefect_api: None, sqlite_engine: Engine, settings: Settings, aapl: pl.DataFrame
) -> None:
    from prefect import flow

    from tasks.features import compute_features

    _store(sqlite_engine, aapl.tail(600))

    @flow(name="features-test")
    def features_flow() -> object:
        return compute_features(settings, sqlite_engine, ["AAPL"])

    run = features_flow()
    assert run.rows == 600 and run.usable_rows == 600 - MIN_HISTORY + 1  # type: ignore[attr-defined]
    assert run.path.parent.name == FEATURE_SET_VERSION  # type: ignore[attr-defined]


def test_cli_builds_and_summarizes(
    settings: Settings, aapl: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockflow.cli import app
    from stockflow.db import make_engine, upgrade

    monkeypatch.setenv("STOCKFLOW_DATA_DIR", str(settings.data_dir))
    eng = make_engine(settings.db_url)
    upgrade(eng)
    _store(eng, pl.concat([aapl, aapl.tail(30).with_columns(pl.lit("SHORT").alias("symbol"))]))
    res = CliRunner().invoke(app, ["features", "--symbols", "aapl,short", "--start", "2012-01-03"])
    assert res.exit_code == 0, res.output
    assert "1 symbols" in res.output and "SHORT: too little history" in res.output
    assert os.path.exists(settings.data_dir / "features" / FEATURE_SET_VERSION / "features.parquet")
    bad = CliRunner().invoke(app, ["features", "--start", "2012-13-01"])
    # An expected error (one line through stockflow.cli.main, exit 2), named by its option.
    assert bad.exit_code != 0 and isinstance(bad.exception, ConfigError)
    assert str(bad.exception) == "--start: '2012-13-01' is not a date (YYYY-MM-DD)"
