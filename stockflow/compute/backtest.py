"""The strategy comparison on any executor, with the signals built where the backtests run.

The bars go to every worker once (:meth:`Executor.scatter` with ``broadcast``); the panel is built once
there; each rule strategy's signals are built on a worker, and next to them its vote for the ensemble (its
target panel: int8, not the signal frame); the ensemble votes over those; then one ``unit`` per strategy
(its backtests with costs on and off: one Prefect task run) runs next to its signals. Only names,
settings values and the results travel through the driver.
The :class:`~stockflow.backtest.runner.Comparison` is built in the strategies' order, exactly as
:func:`stockflow.backtest.runner.run_comparison` builds it in process (same signals, same panel, same
engine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from stockflow.backtest.book import BookSpec
from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import run_backtest
from stockflow.backtest.panel import Panel, align_to_grid, build_panel
from stockflow.backtest.result import BacktestResult
from stockflow.backtest.runner import (
    build_signals,
    make_ensemble,
    resolve_strategies,
    signal_plan,
)
from stockflow.backtest.strategies import make_strategy
from stockflow.backtest.strategies.base import empty_signals
from stockflow.errors import ConfigError
from stockflow.logs import get_logger

if TYPE_CHECKING:
    from stockflow.backtest.runner import Comparison
    from stockflow.compute.executor import Executor
    from stockflow.config import Settings


def run_strategy(
    panel: Panel, signals: pl.DataFrame | BookSpec, config: BacktestConfig, name: str, benchmarks: bool
) -> dict[str, BacktestResult]:
    """One strategy's backtests with ``config``'s costs and without (a plain function of arrays)."""
    off = config.with_costs(Costs.none())
    book = signals if isinstance(signals, BookSpec) else None
    sig = signals if isinstance(signals, pl.DataFrame) else empty_signals()
    return {
        "on": run_backtest(panel, sig, config, strategy=name, benchmarks=benchmarks, book=book),
        "off": run_backtest(panel, sig, off, strategy=name, benchmarks=benchmarks, book=book),
    }


def strategy_signals(name: str, bars: pl.DataFrame) -> pl.DataFrame:
    """A rule strategy's signals (default parameters, as the comparison uses them)."""
    return make_strategy(name).signals(bars)


def panel_grid(panel: Panel) -> tuple[np.ndarray, tuple[str, ...]]:
    """The sessions and symbols of ``panel`` (a few kB: what aligning signals to it needs)."""
    return panel.sessions, panel.symbols


def signal_target(signals: pl.DataFrame, grid: tuple[np.ndarray, tuple[str, ...]]) -> np.ndarray:
    """A member's vote for the ensemble: its signals' target panel (int8, sessions x symbols) on the
    panel of ``grid``, built next to its signals (a few hundred kB travel instead of the signal frame)."""
    return align_to_grid(signals, *grid).target


def ensemble_signals(members: Sequence[str], panel: Panel, targets: Sequence[np.ndarray]) -> pl.DataFrame:
    """The ensemble's vote over its members' target panels (in ``members`` order) on the bars' whole
    panel: the frame ``make_ensemble(members).combine(bars, signals)`` gives."""
    return make_ensemble(members).vote_targets(panel, targets)


def panel_of(bars: pl.DataFrame, start: dt.date | None, end: dt.date | None) -> Panel:
    """A panel of the bars (a unit of its own, so that it is built once on the cluster)."""
    return build_panel(bars, start=start, end=end)


def parallel_comparison(executor: Executor, unit: Any = run_strategy) -> Any:
    """A drop-in for :func:`stockflow.backtest.runner.run_comparison` on ``executor`` (see the module
    docstring). The ML strategies' signals (a walk-forward, the registry) are built here, in the driver."""

    def run(
        bars: pl.DataFrame,
        settings: Settings,
        *,
        strategies: Sequence[str] | str | None,
        start: dt.date,
        end: dt.date,
        costs: Costs | None = None,
        engine: Any = None,
    ) -> Comparison:
        names = resolve_strategies(strategies)
        if bars.is_empty():
            raise ConfigError("symbols: the universe is empty (no bars)")
        config = BacktestConfig.from_settings(settings, costs=costs if costs is not None else True)
        computed, members = signal_plan(names)
        ml = [n for n in names if n not in computed and n != "ensemble"]
        signals: dict[str, Any] = {}
        params: dict[str, dict[str, Any]] = {}
        if ml:
            signals, params = build_signals(ml, bars, settings, start=start, end=end, engine=engine)
        ref = executor.scatter(bars, broadcast=True)  # every signal unit reads the bars
        built = {n: executor.submit(strategy_signals, {"name": n, "bars": ref}) for n in computed}
        for n in computed:
            if n in names:
                signals[n], params[n] = built[n], make_strategy(n).params()
        if members:
            whole = executor.submit(panel_of, {"bars": ref, "start": None, "end": None})
            grid = executor.submit(panel_grid, {"panel": whole})
            votes = [executor.submit(signal_target, {"signals": built[m], "grid": grid}) for m in members]
            signals["ensemble"] = executor.submit(
                ensemble_signals, {"members": members, "panel": whole, "targets": votes}
            )
            params["ensemble"] = make_ensemble(members).params()
        panel = executor.submit(panel_of, {"bars": ref, "start": start, "end": end})
        return _compare(executor, unit, panel, {n: signals[n] for n in names}, config=config, params=params)

    return run


def parallel_compare(executor: Executor, unit: Any = run_strategy) -> Any:
    """A drop-in for :func:`stockflow.backtest.runner.compare` (signals already built): the panel and
    every signal frame are placed on the cluster once, then one ``unit`` per strategy."""

    def compare(
        bars: pl.DataFrame,
        signals: Mapping[str, pl.DataFrame | BookSpec],
        config: BacktestConfig,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        params: Mapping[str, dict[str, Any]] | None = None,
    ) -> Comparison:
        if not signals:
            raise ConfigError("strategies: nothing to compare")
        panel = executor.scatter(build_panel(bars, start=start, end=end))
        placed = {n: executor.scatter(s) for n, s in signals.items()}
        return _compare(executor, unit, panel, placed, config=config, params=dict(params or {}))

    return compare


def _compare(
    executor: Executor,
    unit: Any,
    panel: Any,
    signals: Mapping[str, Any],
    *,
    config: BacktestConfig,
    params: dict[str, dict[str, Any]],
) -> Comparison:
    """One ``unit`` per strategy on ``panel`` (a value or a reference on the cluster); the comparison."""
    from stockflow.backtest.runner import Comparison

    if not signals:
        raise ConfigError("strategies: nothing to compare")
    handles = [
        executor.submit(
            unit, {"panel": panel, "signals": sig, "config": config, "name": name, "benchmarks": i == 0}
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
    first = results[next(iter(results))]["on"]
    get_logger().info(
        "backtest: %d strategies x %d sessions, one unit per strategy (signals built next to it)",
        len(signals), first.equity.height,
    )  # fmt: skip
    return Comparison(results=results, benchmarks=benchmarks, costs=config.costs, params=params)
