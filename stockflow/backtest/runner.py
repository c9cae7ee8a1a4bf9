"""Strategy comparison: build the requested strategies' signals and backtest each with costs on and off.

This is what the ``backtest`` flow and ``stockflow backtest`` run (plain functions, no Prefect).
Strategy names: the rule-based ones (``sma_crossover``, ``rsi_reversion``, ``macd_trend``,
``bollinger_zscore`` and their aliases), ``ensemble`` (performance-weighted vote of the rule-based
strategies requested, or of all four when fewer than two are), ``ml`` (walk-forward ML: retrained
inside the window, see :mod:`.walkforward`) and ``ml_champion`` (the registry's champion, only on
sessions after its training data ends).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from stockflow.backtest.book import BookSpec
from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import run_backtest
from stockflow.backtest.ensemble import Ensemble
from stockflow.backtest.metrics import METRIC_DOCS
from stockflow.backtest.panel import build_panel
from stockflow.backtest.result import BacktestResult
from stockflow.backtest.strategies import (
    RULE_STRATEGIES,
    STRATEGY_NAMES,
    MLStrategy,
    canonical_name,
    empty_signals,
    make_strategy,
)
from stockflow.errors import ConfigError
from stockflow.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.config import Settings

#: Extra names accepted besides :data:`STRATEGY_NAMES`.
EXTRA_NAMES: tuple[str, ...] = ("ml_champion",)

#: Sessions of history loaded before ``start`` for the rule-based indicators (SMA 50, MACD 26+9 ...).
RULE_WARMUP_SESSIONS = 120


def resolve_strategies(names: Sequence[str] | str | None) -> list[str]:
    """Canonical, de-duplicated strategy names from a list or a comma-separated string.

    ``None`` means the four rule-based strategies and the ensemble.
    """
    if names is None:
        return [*RULE_STRATEGIES, "ensemble"]
    raw = names.split(",") if isinstance(names, str) else list(names)
    items = [n.strip() for n in raw if n and n.strip()]
    if not items:
        raise ConfigError(
            "strategies: no strategy given; choose from " + ", ".join((*STRATEGY_NAMES, *EXTRA_NAMES))
        )
    out: list[str] = []
    for n in items:
        key = n.strip().lower() if n.strip().lower() in EXTRA_NAMES else canonical_name(n)
        if key not in out:
            out.append(key)
    return out


def history_sessions(strategies: Sequence[str], settings: Settings) -> int:
    """Sessions of bars needed before ``start`` so that every strategy trades from the first session."""
    need = RULE_WARMUP_SESSIONS
    if "ml" in strategies or "ml_champion" in strategies:
        from stockflow.features import required_history

        need = max(need, required_history(settings.features))
    if "ml" in strategies:
        need += (
            settings.models.train_window_days + settings.models.purge_days + settings.features.label_horizon
        )
    return need


def history_start(start: dt.date, sessions: int) -> dt.date:
    """A calendar date at least ``sessions`` trading sessions before ``start`` (7/5 calendar days each)."""
    return start - dt.timedelta(days=math.ceil(sessions * 7 / 5) + 10)


def signal_plan(strategies: Sequence[str]) -> tuple[list[str], list[str]]:
    """The rule strategies whose signals are computed (the requested ones, then the ensemble's members)
    and the ensemble's members (empty without ``ensemble``): every member when fewer than two rule
    strategies are requested."""
    requested = [n for n in strategies if n in RULE_STRATEGIES]
    members: list[str] = []
    if "ensemble" in strategies:
        members = requested if len(requested) >= 2 else list(RULE_STRATEGIES)
    return list(dict.fromkeys([*requested, *members])), members


def make_ensemble(members: Sequence[str]) -> Ensemble:
    """The ensemble of the comparison: performance-weighted vote over ``members`` (default parameters)."""
    return Ensemble(members=tuple(make_strategy(n) for n in members), weighting="performance")


def build_signals(
    strategies: Sequence[str],
    bars: pl.DataFrame,
    settings: Settings,
    *,
    start: dt.date,
    end: dt.date,
    engine: Engine | None = None,
) -> tuple[dict[str, pl.DataFrame | BookSpec], dict[str, dict[str, Any]]]:
    """Signals and parameters of every strategy in ``strategies`` (canonical names) over ``bars``; the
    ML strategies give the live top-k book over their scores (:class:`BookSpec`) instead of signals."""
    log = get_logger()
    signals: dict[str, pl.DataFrame | BookSpec] = {}
    params: dict[str, dict[str, Any]] = {}
    computed, members = signal_plan(strategies)
    member_signals: dict[str, pl.DataFrame] = {}
    for name in computed:
        strat = make_strategy(name)
        member_signals[name] = strat.signals(bars)
        if name in strategies:
            signals[name] = member_signals[name]
            params[name] = strat.params()
    if members:
        ens = make_ensemble(members)
        signals["ensemble"] = ens.combine(bars, member_signals)
        params["ensemble"] = ens.params()
    if "ml" in strategies:
        from stockflow.backtest.walkforward import walk_forward_predictions

        wf = walk_forward_predictions(bars, settings, start=start, end=end)
        ml = MLStrategy.topk_from_settings(settings, predictions=wf.predictions)
        signals["ml"] = ml.book_spec(bars)
        params["ml"] = {**ml.params(), "model": wf.model_kind, "folds": [f.describe() for f in wf.folds]}
        log.info("ml: walk-forward with %d retrains", len(wf.folds))
    if "ml_champion" in strategies:
        if engine is None:
            raise ConfigError("strategies: ml_champion needs the database (the model registry)")
        from stockflow.backtest.strategies.ml import champion_strategy

        champ, info = champion_strategy(settings, engine)
        signals["ml_champion"] = champ.book_spec(bars)
        params["ml_champion"] = info
    return {n: signals[n] for n in strategies}, {n: params[n] for n in strategies}


@dataclass(frozen=True)
class Comparison:
    """Backtests of several strategies on one universe and window, with costs on and off."""

    results: dict[str, dict[str, BacktestResult]]  # strategy -> {"on": ..., "off": ...}
    benchmarks: dict[str, dict[str, BacktestResult]]  # benchmark -> {"on": ..., "off": ...}
    costs: Costs
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def strategies(self) -> list[str]:
        """Strategy names in the order run."""
        return list(self.results)

    def table(self) -> pl.DataFrame:
        """One row per (strategy or benchmark, costs on/off) with every metric (NaN where undefined)."""
        rows: list[dict[str, Any]] = []
        for kind, group in (("strategy", self.results), ("benchmark", self.benchmarks)):
            for name, by_costs in group.items():
                for costs in ("on", "off"):
                    m = by_costs[costs].metrics
                    rows.append(
                        {"strategy": name, "kind": kind, "costs": costs, **{k: m[k] for k in METRIC_DOCS}}
                    )
        schema: dict[str, Any] = {"strategy": pl.Utf8, "kind": pl.Utf8, "costs": pl.Utf8}
        schema.update({k: pl.Float64 for k in METRIC_DOCS})
        return pl.DataFrame(rows, schema=schema, orient="row")

    def metrics_json(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """``{name: {"on": metrics, "off": metrics}}`` with NaN/inf as None (for the database)."""
        from stockflow.backtest.metrics import json_safe

        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for group in (self.results, self.benchmarks):
            for name, by_costs in group.items():
                out[name] = {c: json_safe(r.metrics) for c, r in by_costs.items()}
        return out


def compare(
    bars: pl.DataFrame,
    signals: Mapping[str, pl.DataFrame | BookSpec],
    config: BacktestConfig,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    params: Mapping[str, dict[str, Any]] | None = None,
) -> Comparison:
    """Backtest every signal frame (or top-k book) on ``bars`` in ``start``..``end`` with ``config``'s costs
    and without."""
    if not signals:
        raise ConfigError("strategies: nothing to compare")
    panel = build_panel(bars, start=start, end=end)
    off = config.with_costs(Costs.none())
    results: dict[str, dict[str, BacktestResult]] = {}
    benchmarks: dict[str, dict[str, BacktestResult]] = {}
    for i, (name, given) in enumerate(signals.items()):
        book = given if isinstance(given, BookSpec) else None
        sig = given if isinstance(given, pl.DataFrame) else empty_signals()
        on_r = run_backtest(panel, sig, config, strategy=name, benchmarks=i == 0, book=book)
        off_r = run_backtest(panel, sig, off, strategy=name, benchmarks=i == 0, book=book)
        results[name] = {"on": on_r, "off": off_r}
        if i == 0:
            for b in on_r.benchmarks:
                benchmarks[b] = {"on": on_r.benchmarks[b], "off": off_r.benchmarks[b]}
    get_logger().info(
        "backtest: %d strategies x %d symbols x %d sessions (%s .. %s)",
        len(signals), len(panel.symbols), panel.shape[0], panel.sessions[0], panel.sessions[-1],
    )  # fmt: skip
    return Comparison(results=results, benchmarks=benchmarks, costs=config.costs, params=dict(params or {}))


def run_comparison(
    bars: pl.DataFrame,
    settings: Settings,
    *,
    strategies: Sequence[str] | str | None,
    start: dt.date,
    end: dt.date,
    costs: Costs | None = None,
    engine: Engine | None = None,
    compare_fn: Callable[..., Comparison] | None = None,
) -> Comparison:
    """Signals of ``strategies`` over ``bars`` (history before ``start`` included), then :func:`compare`
    (or ``compare_fn``, e.g. one unit per strategy on a Dask cluster: stockflow.compute.backtest)."""
    names = resolve_strategies(strategies)
    if bars.is_empty():
        raise ConfigError("symbols: the universe is empty (no bars)")
    config = BacktestConfig.from_settings(settings, costs=costs if costs is not None else True)
    signals, params = build_signals(names, bars, settings, start=start, end=end, engine=engine)
    return (compare_fn or compare)(bars, signals, config, start=start, end=end, params=params)
