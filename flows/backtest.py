"""The ``backtest`` flow (deployable, run on demand): compare strategies on stored bars with costs on
and off, publish the comparison table and a link to the HTML tearsheet, and record the run.

Parameters (all optional, validated): ``strategies`` (names or aliases, default the four rule-based
strategies and the ensemble; ``ml`` runs the walk-forward ML backtest), ``symbols`` (default the
configured universe), ``start``/``end`` (default ``settings.backtest`` or the last three years of
stored bars), ``costs`` (override any of the paper broker's costs).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field

import flows  # noqa: F401  (one line for expected errors, also when Prefect loads this file by path)
from stockflow.backtest.service import fail_run, make_request, new_run_key, start_run
from stockflow.compute.executor import open_executor
from stockflow.config import load_settings
from stockflow.db import get_engine, upgrade
from stockflow.logs import get_logger
from tasks.backtest import (
    compare_strategies,
    load_backtest_bars,
    publish_backtest_artifacts,
    record_backtest_run,
    write_backtest_reports,
)


class CostsParam(BaseModel):
    """Costs for the 'costs on' runs; unset fields keep ``settings.broker``'s values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slippage_bps: float | None = Field(
        None, ge=0, lt=10_000, description="Slippage per fill in basis points."
    )
    commission_per_share: float | None = Field(None, ge=0, description="Commission per share.")
    commission_per_order: float | None = Field(None, ge=0, description="Commission per order.")
    commission_pct: float | None = Field(
        None, ge=0, lt=1, description="Commission as a fraction of notional."
    )

    def overrides(self) -> dict[str, float]:
        """The fields that were set."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


@flow(name="backtest", retries=0, validate_parameters=True)
def backtest_flow(
    strategies: list[str] | None = None,
    symbols: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    costs: CostsParam | None = None,
) -> dict[str, Any]:
    """Backtest ``strategies`` on ``symbols`` over ``start``..``end`` (see the module docstring).

    Args:
        strategies: sma_crossover (sma), rsi_reversion (rsi), macd_trend (macd), bollinger_zscore
            (bollinger), ensemble, ml (walk-forward, retrained inside the window), ml_champion.
            Default: the four rule-based strategies and the ensemble.
        symbols: the universe (default: settings data.symbols); must have stored bars.
        start: first session of the window (default: settings backtest.start, else three years before end).
        end: last session (default: settings backtest.end, else the latest stored bar).
        costs: slippage and commissions for the "costs on" runs (default: the paper broker's settings).
    """
    settings = load_settings()
    request = make_request(
        settings,
        strategies=strategies,
        symbols=symbols,
        start=start,
        end=end,
        costs=costs.overrides() if costs is not None else None,
    )
    engine = get_engine(settings.db_url)
    upgrade(engine)
    run_key = new_run_key()
    start_run(engine, request, run_key=run_key, flow_run_id=flow_run.get_id())
    try:
        bars, s, e = load_backtest_bars(settings, engine, request)
        syms = sorted(bars.get_column("symbol").unique().to_list())
        with open_executor(settings) as executor:  # compute.dask_address: one task per strategy on Dask
            comparison = compare_strategies(
                settings, engine, request, bars, start=s, end=e, executor=executor
            )
        files = write_backtest_reports(
            settings, comparison, run_key=run_key, start=s, end=e, n_symbols=len(syms)
        )
        record_backtest_run(
            settings, engine, comparison, run_key=run_key, start=s, end=e, symbols=syms, files=files
        )
        published = publish_backtest_artifacts(settings, comparison, files, run_key=run_key)
    except BaseException as err:
        fail_run(engine, run_key, err)
        raise
    get_logger().info("backtest %s: tearsheet %s", run_key, published["tearsheet_url"])
    return {
        "run_key": run_key,
        "start": s.isoformat(),
        "end": e.isoformat(),
        "symbols": syms,
        "strategies": list(request.strategies),
        "report_dir": str(files.directory),
        "tearsheet": str(files.tearsheet),
        "tearsheet_url": published["tearsheet_url"],
        "comparison_csv": str(files.comparison_csv),
        "table": published["rows"],
    }
