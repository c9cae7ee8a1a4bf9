"""Per-model figures the promotion gates read, from one long frame of out-of-sample predictions.

For every model, baseline and control on the same folds: its per-session rank IC compared session by
session with the momentum and reversal baselines' (mean difference, Newey-West t), and its net-of-cost
top-k portfolio (:mod:`stockflow.evaluation.topk_eval`) against the equal-weight universe. Plain
functions of data, so the retrain, the benchmark and tests share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from stockflow.evaluation.panel import paired_ic_t, session_ic
from stockflow.evaluation.topk_eval import TopkConfig, equal_weight_summary, portfolio_summary, topk_returns

#: Baselines whose rank IC a challenger must beat with session-level significance.
IC_BASELINES: tuple[str, ...] = ("momentum", "reversal")


def _daily(g: pl.DataFrame) -> pl.DataFrame:
    return session_ic(g["p"].to_numpy(), g["fwd_ret"].to_numpy(), g["session"].to_numpy())


def panel_figures(
    preds: pl.DataFrame,
    topk: TopkConfig,
    *,
    label_horizon: int = 1,
    ic_baselines: Sequence[str] = IC_BASELINES,
) -> dict[str, dict[str, Any]]:
    """``{model: {"vs_<baseline>": {diff_mean, diff_t, n_sessions}, "portfolio": {...}}}`` plus an
    ``equal_weight`` entry (the universe's own figures). ``preds`` is the long frame of
    :func:`stockflow.ml.training.fold_predictions` (needs p, fwd_ret, fwd_ret_1)."""
    out: dict[str, dict[str, Any]] = {}
    dailies: dict[str, pl.DataFrame] = {}
    groups = {str(k[0]): g for k, g in preds.group_by("model", maintain_order=True)}
    for name, g in groups.items():
        dailies[name] = _daily(g)
    bench_daily: pl.DataFrame | None = None
    for name, g in groups.items():
        figs: dict[str, Any] = {}
        for b in ic_baselines:
            if b in dailies and b != name:
                figs[f"vs_{b}"] = paired_ic_t(dailies[name], dailies[b], label_horizon=label_horizon)
        if "fwd_ret_1" in g.columns:
            daily = topk_returns(g, topk)
            figs["portfolio"] = portfolio_summary(daily, topk)
            if bench_daily is None and daily.height:
                bench_daily = daily
        out[name] = figs
    if bench_daily is not None:
        out["equal_weight"] = {"portfolio": equal_weight_summary(bench_daily)}
    return out
