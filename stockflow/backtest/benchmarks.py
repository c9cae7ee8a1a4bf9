"""Benchmarks of a backtest's universe, with the same costs: buy-and-hold and daily equal weight.

- ``buy_and_hold``: the initial cash split equally over the symbols that trade on the first session,
  bought at its open (fractional shares, so that a $10k account can hold hundreds of symbols), held
  and sold at the last close. Pays the configured slippage and commissions on both fills.
- ``equal_weight``: the mean daily return of the symbols trading on consecutive sessions (rebalanced
  every day), entered at the first open; slippage and the percent commission are charged on entry
  and exit only (rebalancing costs are not modelled).
"""

from __future__ import annotations

import numpy as np

from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.panel import Panel, forward_fill
from stockflow.backtest.result import BacktestResult, build_result


def buy_and_hold(panel: Panel, config: BacktestConfig) -> dict[str, np.ndarray]:
    """Raw engine arrays of the buy-and-hold benchmark."""
    T, _ = panel.shape
    c = config.costs
    pct = c.commission_pct
    cval = np.nan_to_num(forward_fill(panel.close), nan=0.0)
    idx = np.flatnonzero(panel.valid[0])
    initial = config.initial_cash
    ref_in = panel.open[0, idx]
    px_in = ref_in * (1 + c.slip)
    alloc = initial / max(len(idx), 1)
    # Spend alloc per symbol including its commission: q*px*(1+pct) + per_share*q + per_order = alloc.
    q = np.maximum((alloc - c.commission_per_order) / (px_in * (1 + pct) + c.commission_per_share), 0.0)
    comm_in = np.where(q > 0, c.commission(q, px_in), 0.0)
    cash = initial - float((q * px_in + comm_in).sum())
    pos = cval[:, idx] @ q
    equity = cash + pos
    ref_out = cval[T - 1, idx]
    px_out = ref_out * (1 - c.slip)
    comm_out = np.where(q > 0, c.commission(q, px_out), 0.0)
    final_cash = cash + float((q * px_out - comm_out).sum())
    equity[-1] = final_cash
    pos = pos.copy()
    pos[-1] = 0.0
    n = len(idx)
    return {
        "t": np.concatenate([np.zeros(n, dtype=np.int64), np.full(n, T - 1, dtype=np.int64)]),
        "sym": np.concatenate([idx, idx]).astype(np.int64),
        "side": np.concatenate([np.ones(n), -np.ones(n)]).astype(np.int8),
        "qty": np.concatenate([q, q]),
        "price": np.concatenate([px_in, px_out]),
        "ref": np.concatenate([ref_in, ref_out]),
        "commission": np.concatenate([comm_in, comm_out]),
        "reason": np.concatenate([np.zeros(n), np.full(n, 4)]).astype(np.int8),
        "equity": equity,
        "cash": np.full(T, cash),
        "positions_value": pos,
        "n_positions": np.full(T, n, dtype=np.int64),
    }


def equal_weight(panel: Panel, config: BacktestConfig) -> dict[str, np.ndarray]:
    """Raw engine arrays of the daily-rebalanced equal-weight benchmark (no fills recorded)."""
    T, _ = panel.shape
    c = config.costs
    frac = c.slip + c.commission_pct
    close, open_ = panel.close, panel.open
    r = np.zeros(T)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[0] = np.nanmean(close[0] / open_[0] - 1.0) if panel.valid[0].any() else 0.0
        if T > 1:
            rr = close[1:] / close[:-1] - 1.0
            counts = np.isfinite(rr).sum(axis=1)
            r[1:] = np.where(counts > 0, np.nansum(rr, axis=1) / np.maximum(counts, 1), 0.0)
    equity = config.initial_cash * (1 - frac) * np.cumprod(1.0 + r)
    equity[-1] *= 1 - frac
    pos = equity.copy()
    pos[-1] = 0.0
    empty_i = np.empty(0, dtype=np.int64)
    empty_f = np.empty(0)
    return {
        "t": empty_i,
        "sym": empty_i,
        "side": np.empty(0, dtype=np.int8),
        "qty": empty_f,
        "price": empty_f,
        "ref": empty_f,
        "commission": empty_f,
        "reason": np.empty(0, dtype=np.int8),
        "equity": equity,
        "cash": np.zeros(T),
        "positions_value": pos,
        "n_positions": np.full(T, int(panel.valid.any(axis=0).sum()), dtype=np.int64),
    }


def benchmark_results(panel: Panel, config: BacktestConfig) -> dict[str, BacktestResult]:
    """Both benchmarks as :class:`BacktestResult` objects (metrics computed the same way)."""
    return {
        "buy_and_hold": build_result("buy_and_hold", panel, config, buy_and_hold(panel, config)),
        "equal_weight": build_result("equal_weight", panel, config, equal_weight(panel, config)),
    }
