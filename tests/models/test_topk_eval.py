"""The net-of-cost top-k evaluation: the same select_topk as the live trade, costs, and its figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from stockflow.evaluation.figures import panel_figures
from stockflow.evaluation.topk_eval import TopkConfig, portfolio_summary, topk_returns


def _preds(n_sessions: int = 60, n_symbols: int = 20, skill: float = 1.0, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.02, (n_sessions, n_symbols)) + rng.normal(0, 0.01, (n_sessions, 1))
    p = skill * (r - r.mean(axis=1, keepdims=True)) + rng.normal(0, 0.02, r.shape)
    days = [dt.date(2021, 1, 1) + dt.timedelta(days=i) for i in range(n_sessions)]
    return pl.DataFrame({
        "session": pl.Series(np.repeat(days, n_symbols).tolist(), dtype=pl.Date),
        "symbol": np.tile([f"S{j:02d}" for j in range(n_symbols)], n_sessions),
        "p": p.ravel(),
        "fwd_ret": r.ravel(),
        "fwd_ret_1": r.ravel(),
    })  # fmt: skip


def test_book_respects_k_and_turnover_bound_and_costs_are_charged() -> None:
    cfg = TopkConfig(top_k=5, hold_buffer=2, max_changes=1, cost_bps=10.0)
    daily = topk_returns(_preds(), cfg)
    assert daily.height == 60
    # First session builds the book (5 entries = turnover 1); later at most 1 exit + 1 entry (2/5).
    assert daily["turnover"][0] == pytest.approx(1.0)
    assert daily["turnover"][1:].max() <= 2 / 5 + 1e-12
    assert np.allclose(daily["cost"], daily["turnover"] * 10 / 1e4)
    assert np.allclose(daily["excess"], daily["net"] - daily["bench"])


def test_a_skilled_score_beats_the_universe_and_noise_does_not() -> None:
    cfg = TopkConfig(top_k=5, hold_buffer=0, max_changes=None, cost_bps=5.0)
    good = portfolio_summary(topk_returns(_preds(skill=1.0), cfg))
    noise = portfolio_summary(topk_returns(_preds(skill=0.0), cfg))
    assert good["excess_ann"] > 0 and good["ir"] > 2
    assert noise["ir"] < good["ir"] and good["max_drawdown"] <= 0


def test_panel_figures_name_every_model_and_the_equal_weight_universe() -> None:
    a = _preds(skill=1.0).with_columns(pl.lit("model").alias("model"))
    b = _preds(skill=0.0).with_columns(pl.lit("momentum").alias("model"))
    c = _preds(skill=0.0, seed=1).with_columns(pl.lit("reversal").alias("model"))
    figs = panel_figures(pl.concat([a, b, c]), TopkConfig(top_k=5, hold_buffer=1, max_changes=2))
    assert set(figs) == {"model", "momentum", "reversal", "equal_weight"}
    assert figs["model"]["vs_momentum"]["diff_t"] > 2 and figs["model"]["vs_reversal"]["diff_mean"] > 0
    assert figs["equal_weight"]["portfolio"]["excess_ann"] == 0.0
