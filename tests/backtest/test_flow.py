"""The backtest flow on a real Prefect API, its run record on both databases, and the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from stockflow.backtest.config import Costs
from stockflow.backtest.runner import run_comparison
from stockflow.backtest.service import fail_run, finish_run, list_runs, make_request, new_run_key, start_run
from stockflow.config import Settings, load_settings
from stockflow.db import make_engine, transaction, upgrade
from stockflow.errors import ConfigError
from stockflow.store.bars import store_bars
from tests.backtest.conftest import random_bars

SYMBOLS = ["AAA", "BBB", "CCC"]
START, END = dt.date(2015, 6, 1), dt.date(2016, 5, 31)


def _store(engine: Engine, bars: pl.DataFrame) -> None:
    with transaction(engine) as s:
        store_bars(s, bars, source="test", ingest_run_id=None)


@pytest.fixture
def stored(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Engine]:
    """Settings that flows and the CLI also see (environment), with bars in the SQLite store."""
    monkeypatch.setenv("STOCKFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("STOCKFLOW_REPORTS_DIR", str(settings.reports_dir))
    engine = make_engine(settings.db_url)
    upgrade(engine)
    _store(engine, random_bars(SYMBOLS, 400, seed=11))
    return settings, engine


def test_flow_compares_publishes_and_records(prefect_api: None, stored: tuple[Settings, Engine]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.backtest import backtest_flow

    settings, engine = stored
    out = backtest_flow(
        strategies=["sma", "rsi", "ensemble"],
        symbols=SYMBOLS,
        start=START,
        end=END,
        costs={"slippage_bps": 10},
    )
    assert out["strategies"] == ["sma_crossover", "rsi_reversion", "ensemble"]
    table = pl.read_csv(out["comparison_csv"])
    assert table.height == (3 + 2) * 2  # strategies and the two benchmarks, costs on and off
    on = table.filter((pl.col("strategy") == "sma_crossover") & (pl.col("costs") == "on")).row(0, named=True)
    off = table.filter((pl.col("strategy") == "sma_crossover") & (pl.col("costs") == "off")).row(
        0, named=True
    )
    assert on["n_trades"] > 0 and on["costs_paid"] > 0 and off["costs_paid"] == 0
    assert on["final_equity"] < off["final_equity"]
    run_dir = Path(settings.reports_dir) / "backtests" / out["run_key"]
    assert Path(out["report_dir"]) == run_dir
    html = (run_dir / "tearsheet.html").read_text()
    assert "Monthly returns" in html and "Rolling Sharpe" in html and "Trade distribution" in html
    assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000  # plotly.js is inline
    for png in ("equity", "drawdown", "monthly_returns", "rolling_sharpe", "trade_returns"):
        assert (run_dir / f"{png}.png").stat().st_size > 5_000
    assert out["tearsheet_url"] == (
        f"http://{settings.server.host}:{settings.server.reports_port}/backtests/{out['run_key']}/tearsheet.html"
    )
    row = list_runs(engine)[0]
    assert row.run_key == out["run_key"] and row.status == "succeeded" and row.flow_run_id
    assert row.start == START and row.end <= END and row.symbols == SYMBOLS
    assert set(row.metrics) == {"sma_crossover", "rsi_reversion", "ensemble", "buy_and_hold", "equal_weight"}
    assert row.params["costs"]["slippage_bps"] == 10
    with get_client(sync_client=True) as client:  # this run's artifacts (other tests publish the same keys)
        keys = ("backtest-comparison", "backtest-tearsheet")
        found = {
            k: client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[k])))
            for k in keys
        }
    arts = {k: [a for a in found[k] if str(a.flow_run_id) == str(row.flow_run_id)] for k in keys}
    assert arts["backtest-comparison"] and arts["backtest-comparison"][0].type == "table"
    (link,) = arts["backtest-tearsheet"]  # Prefect stores a link artifact as markdown [text](url)
    assert f"({out['tearsheet_url']})" in str(link.data)


def test_flow_rejects_bad_parameters_by_name(prefect_api: None, stored: tuple[Settings, Engine]) -> None:
    from flows.backtest import backtest_flow

    _, engine = stored
    with pytest.raises(Exception, match="slippage_bps"):
        backtest_flow(costs={"slippage_bps": -1})
    with pytest.raises(ConfigError, match="symbols: the universe is empty"):
        backtest_flow(symbols=[])
    with pytest.raises(ConfigError, match="strategies: unknown strategy 'moon'"):
        backtest_flow(strategies=["moon"])
    with pytest.raises(ConfigError, match="symbols: no stored bars for ZZZ"):
        backtest_flow(symbols=["ZZZ"])
    with pytest.raises(ConfigError, match="start/end: no bars between 1990-01-01 and 1990-02-01"):
        backtest_flow(symbols=SYMBOLS, start=dt.date(1990, 1, 1), end=dt.date(1990, 2, 1))
    failed = [r.error or "" for r in list_runs(engine) if r.status == "failed"]
    assert any("no stored bars for ZZZ" in e for e in failed)  # a run that started is recorded as failed


def test_run_record_on_both_backends(engine: Engine) -> None:
    settings = load_settings()
    req = make_request(
        settings, strategies="sma,bollinger", symbols="aaa,bbb", costs={"commission_pct": 0.001}
    )
    assert req.symbols == ("AAA", "BBB") and req.costs == Costs(slippage_bps=5.0, commission_pct=0.001)
    bars = random_bars(("AAA", "BBB"), 300, seed=5)
    comp = run_comparison(
        bars, settings, strategies=req.strategies, start=dt.date(2015, 4, 1), end=dt.date(2016, 1, 29)
    )
    key = new_run_key()
    start_run(engine, req, run_key=key)
    finish_run(
        engine,
        key,
        comp,
        start=dt.date(2015, 4, 1),
        end=dt.date(2016, 1, 29),
        symbols=["AAA", "BBB"],
        files=None,
    )
    key2 = new_run_key()
    start_run(engine, req, run_key=key2)
    fail_run(engine, key2, ConfigError("boom"))
    rows = {r.run_key: r for r in list_runs(engine)}
    assert (
        rows[key].status == "succeeded"
        and rows[key2].status == "failed"
        and rows[key2].error == "ConfigError: boom"
    )
    m = rows[key].metrics["sma_crossover"]["on"]
    assert m["n_trades"] == comp.results["sma_crossover"]["on"].metrics["n_trades"]
    assert rows[key].params["strategies"]["sma_crossover"]["fast"] == 20


def test_cli_prints_the_comparison(stored: tuple[Settings, Engine]) -> None:
    from stockflow.cli import app

    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--strategies",
            "sma_crossover,rsi",
            "--symbols",
            "AAA,BBB",
            "--start",
            "2015-06-01",
            "--end",
            "2016-03-31",
            "--no-report",
        ],
    )
    assert res.exit_code == 0, res.output
    for word in ("sma_crossover", "rsi_reversion", "buy_and_hold", "equal_weight", "2 symbols"):
        assert word in res.output
    bad = CliRunner().invoke(app, ["backtest", "--strategies", "sma", "--slippage-bps", "-3", "--no-report"])
    assert isinstance(bad.exception, ConfigError) and "costs.slippage_bps" in str(bad.exception)
