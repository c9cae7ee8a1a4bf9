"""Prefect tasks of the backtest flow: coarse stages over the whole universe (no caching: every run reads
the current state store and writes its own report folder)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.runner import run_comparison
from stockflow.backtest.service import finish_run, load_universe, report_dir
from stockflow.backtest.tearsheet import format_table, write_reports
from stockflow.compute.backtest import parallel_comparison
from stockflow.logs import get_logger
from stockflow.ops.reports import report_url
from tasks.compute import backtest_strategy

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.backtest.runner import Comparison
    from stockflow.backtest.service import BacktestRequest
    from stockflow.backtest.tearsheet import ReportFiles
    from stockflow.compute.executor import Executor
    from stockflow.config import Settings

#: Keys of the artifacts the flow publishes (stable: the UI shows their history).
TABLE_ARTIFACT_KEY = "backtest-comparison"
LINK_ARTIFACT_KEY = "backtest-tearsheet"


@task(name="load-backtest-bars", cache_policy=NO_CACHE)
def load_backtest_bars(
    settings: Settings, engine: Engine, request: BacktestRequest
) -> tuple[pl.DataFrame, dt.date, dt.date]:
    """Bars of the universe with the history the strategies need, and the resolved window."""
    bars, start, end = load_universe(settings, engine, request)
    get_logger().info(
        "backtest bars: %d rows, %d symbols, window %s .. %s",
        bars.height, bars.get_column("symbol").n_unique(), start, end,
    )  # fmt: skip
    return bars, start, end


@task(name="compare-strategies", cache_policy=NO_CACHE)
def compare_strategies(
    settings: Settings,
    engine: Engine,
    request: BacktestRequest,
    bars: pl.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    executor: Executor | None = None,
) -> Comparison:
    """Signals of every strategy, then backtests with costs on and off: here, in one task, or with a
    distributed ``executor`` (stockflow.compute) the signals built on the workers and one
    ``backtest-strategy`` task per strategy."""
    run = run_comparison
    if executor is not None and executor.distributed:
        run = parallel_comparison(executor, backtest_strategy)
    comp = run(
        bars,
        settings,
        strategies=request.strategies,
        start=start,
        end=end,
        costs=request.costs,
        engine=engine,
    )
    for name, by_costs in comp.results.items():
        m = by_costs["on"].metrics
        get_logger().info(
            "%s: total return %.2f%%, Sharpe %.2f, max drawdown %.2f%%, %d trades",
            name, 100 * m["total_return"], m["sharpe"], 100 * m["max_drawdown"], int(m["n_trades"]),
        )  # fmt: skip
    return comp


@task(name="write-backtest-reports", cache_policy=NO_CACHE)
def write_backtest_reports(
    settings: Settings, comparison: Comparison, *, run_key: str, start: dt.date, end: dt.date, n_symbols: int
) -> ReportFiles:
    """Tearsheet HTML, PNGs and CSVs under ``reports_dir/backtests/<run_key>``."""
    subtitle = (
        f"{n_symbols} symbols, {start} .. {end}; costs: {comparison.costs.slippage_bps:g} bps slippage, "
        f"{comparison.costs.commission_per_share:g}/share, {comparison.costs.commission_per_order:g}/order, "
        f"{comparison.costs.commission_pct:.4%} of notional. Signals act on the next bar."
    )
    return write_reports(
        comparison, report_dir(settings, run_key), title=f"Backtest {run_key}", subtitle=subtitle
    )


@task(name="record-backtest-run", cache_policy=NO_CACHE)
def record_backtest_run(
    settings: Settings,
    engine: Engine,
    comparison: Comparison,
    *,
    run_key: str,
    start: dt.date,
    end: dt.date,
    symbols: list[str],
    files: ReportFiles | None,
) -> None:
    """Store metrics and report paths in ``backtest_runs``."""
    finish_run(
        engine,
        run_key,
        comparison,
        start=start,
        end=end,
        symbols=symbols,
        files=files,
        config=BacktestConfig.from_settings(settings, costs=comparison.costs),
    )


@task(name="publish-backtest-artifacts", cache_policy=NO_CACHE)
def publish_backtest_artifacts(
    settings: Settings, comparison: Comparison, files: ReportFiles, *, run_key: str
) -> dict[str, Any]:
    """The comparison as a table artifact and the tearsheet as a link artifact (stable keys)."""
    rows = format_table(comparison.table())
    create_table_artifact(
        table=rows,
        key=TABLE_ARTIFACT_KEY,
        description=(
            f"Backtest {run_key}: strategies and benchmarks, costs on and off (CSV: {files.comparison_csv})"
        ),
    )
    url = report_url(settings, files.tearsheet)
    create_link_artifact(
        link=url,
        link_text=f"Backtest tearsheet {run_key}",
        key=LINK_ARTIFACT_KEY,
        description="Self-contained HTML tearsheet (served from reports_dir by the reports server).",
    )
    return {"tearsheet_url": url, "rows": rows}
