"""The strategy comparison with one unit per strategy (its backtests with costs on and off), run on any
executor; the :class:`~stockflow.backtest.runner.Comparison` is built in the strategies' order, exactly
as :func:`stockflow.backtest.runner.compare` builds it in process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import run_backtest
from stockflow.backtest.panel import Panel, build_panel
from stockflow.backtest.result import BacktestResult
from stockflow.errors import ConfigError
from stockflow.logs import get_logger

if TYPE_CHECKING:
    from stockflow.backtest.runner import Comparison
    from stockflow.compute.executor import Executor


def run_strategy(
    panel: Panel, signals: pl.DataFrame, config: BacktestConfig, name: str, benchmarks: bool
) -> dict[str, BacktestResult]:
    """One strategy's backtests with ``config``'s costs and without (a plain function of arrays)."""
    off = config.with_costs(Costs.none())
    return {
        "on": run_backtest(panel, signals, config, strategy=name, benchmarks=benchmarks),
        "off": run_backtest(panel, signals, off, strategy=name, benchmarks=benchmarks),
    }


def parallel_compare(executor: Executor, unit: Any = run_strategy) -> Any:
    """A drop-in for :func:`stockflow.backtest.runner.compare` that submits one ``unit`` per strategy."""

    def compare(
        bars: pl.DataFrame,
        signals: Mapping[str, pl.DataFrame],
        config: BacktestConfig,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        params: Mapping[str, dict[str, Any]] | None = None,
    ) -> Comparison:
        from stockflow.backtest.runner import Comparison

        if not signals:
            raise ConfigError("strategies: nothing to compare")
        panel = build_panel(bars, start=start, end=end)
        ref = executor.scatter(panel)
        handles = [
            executor.submit(
                unit, {"panel": ref, "signals": sig, "config": config, "name": name, "benchmarks": i == 0}
            )
            for i, (name, sig) in enumerate(signals.items())
        ]
        results: dict[str, dict[str, BacktestResult]] = {}
        benchmarks: dict[str, dict[str, BacktestResult]] = {}
        for i, (name, h) in enumerate(zip(signals, handles, strict=True)):
            results[name] = h.result()
            if i == 0:
                on_r, off_r = results[name]["on"], results[name]["off"]
                for b in on_r.benchmarks:
                    benchmarks[b] = {"on": on_r.benchmarks[b], "off": off_r.benchmarks[b]}
        get_logger().info(
            "backtest: %d strategies x %d symbols x %d sessions (%s .. %s), one unit per strategy",
            len(signals), len(panel.symbols), panel.shape[0], panel.sessions[0], panel.sessions[-1],
        )  # fmt: skip
        return Comparison(
            results=results, benchmarks=benchmarks, costs=config.costs, params=dict(params or {})
        )

    return compare
