"""The backtest engine: a loop over sessions with numpy arrays across symbols.

Timing (no look-ahead): a signal computed on session ``t`` (from data up to the close of ``t``) becomes
an order that fills at the **open of t+1**. The rules are the live loop's (the daily ``trade`` flow with
the paper broker), so that replaying it gives the same trades. Per session, in this order:

1. open: pending exits fill at the open (market orders), then pending entries in priority order; an
   entry the cash cannot pay for at the fill price is rejected (as the paper broker does);
2. intraday: protective stops of positions entered before today (the live loop places the stop order
   after the entry day's close) trigger when the low reaches them and fill at the stop, or at the open
   when it gapped through, with :func:`stockflow.risk.stops.stop_triggered` and
   :func:`~stockflow.risk.stops.stop_fill_price`;
3. close: mark to market; stops follow the high since entry with
   :func:`~stockflow.risk.stops.update_trailing_stop` (starting from
   :func:`~stockflow.risk.stops.initial_stop`), rounded to ``stop_tick`` and never lowered;
4. decide: exits where the target is no longer long; entries where the strategy allows opening a position
   (``entry``: e.g. after a stop-out a hold-until strategy waits for a fresh entry condition, as the live
   loop does), ranked by strength (ties by symbol), sized
   with :func:`stockflow.risk.sizing.position_size` (or a fixed notional) at the close, within the
   order, open-position and exposure limits (positions being exited still count, as in the live risk
   engine) and the cash at the close (exit proceeds are not spent before they arrive).

Open positions are closed at the last session's close (``close_at_end``). Long only: a target of -1 is
treated as "flat" (the live loop does not short).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time

import numpy as np
import polars as pl

from stockflow.backtest import kernel
from stockflow.backtest.benchmarks import benchmark_results
from stockflow.backtest.book import BookSpec, TopkRule
from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.panel import Panel, SignalPanel, align_signals, build_panel
from stockflow.backtest.result import EXIT_REASONS, BacktestResult, build_result

assert EXIT_REASONS[kernel.STOP] == "stop" and EXIT_REASONS[kernel.END] == "end"

_EMPTY_INT = np.empty(0, dtype=np.int64)


def simulate(
    panel: Panel, sig: SignalPanel, config: BacktestConfig, rule: TopkRule | None = None
) -> dict[str, np.ndarray]:
    """Run the session loop; returns the equity-curve arrays and the fill columns.

    See the module docstring for the order of events within a session; the loop itself is
    :func:`stockflow.backtest.kernel.run_sessions` (numba). With ``rule`` (the live target book,
    :mod:`stockflow.backtest.book`) step 4 is the rule's exits and sized entries instead, decided here
    between sessions.
    """
    n_sessions, n = panel.shape
    c = config.costs
    none = math.nan
    fp = np.array(
        [1.0 + c.slip, 1.0 - c.slip, c.commission_per_order, c.commission_per_share, c.commission_pct,
         config.stop_loss, none if config.trailing_stop is None else config.trailing_stop,
         config.trailing_activation, none if config.stop_tick is None else config.stop_tick,
         config.risk_per_trade, config.max_position_weight, config.min_order_notional,
         none if config.fixed_notional is None else config.fixed_notional,
         none if config.max_total_exposure is None else config.max_total_exposure],
    )  # fmt: skip
    ip = np.array(
        [config.use_stops, _or(config.max_open_positions), _or(config.max_orders_per_session),
         config.close_at_end, config.sizing == "fixed_notional", rule is None, rule is None],
        dtype=np.int64,
    )  # fmt: skip
    st = np.zeros((10, n))
    st[3:5] = -np.inf  # stop, first stop
    entry_t = np.full(n, -1, dtype=np.int64)
    pend_order = np.empty(n, dtype=np.int64)
    istate = np.zeros(4, dtype=np.int64)
    cash = np.array([float(config.initial_cash)])
    cap = max(4 * n, 1024)
    fills, fcols = np.empty((4, cap), dtype=np.int64), np.empty((4, cap))
    curves = np.empty((3, n_sessions))
    n_pos = np.zeros(n_sessions, dtype=np.int64)

    # Writeable, C-ordered arrays: a panel that arrives read-only (Dask hands a worker the arrays another
    # worker built as read-only buffers) would otherwise make numba compile a second kernel (~40 s).
    def w(a: np.ndarray) -> np.ndarray:
        return np.require(a, requirements=("C", "W"))

    arrays = (w(panel.open), w(panel.high), w(panel.low), w(panel.close), w(panel.valid),
              w(sig.target), w(sig.entry), w(sig.strength), w(sig.size))  # fmt: skip
    t = 0
    while t < n_sessions:
        if fills.shape[1] - istate[kernel.N_FILLS] < 2 * n:
            cap = 2 * fills.shape[1] + 2 * n
            fills = np.concatenate([fills, np.empty((4, cap), dtype=np.int64)], axis=1)
            fcols = np.concatenate([fcols, np.empty((4, cap))], axis=1)
        stop_at = n_sessions if rule is None else t + 1
        done = kernel.run_sessions(
            t, stop_at, *arrays, fp, ip, st, entry_t, pend_order, istate, cash, fills, fcols, curves, n_pos
        )
        if rule is not None and done == t + 1 and done < n_sessions:
            _book_orders(rule, t, st, istate, pend_order, equity=curves[0, t], cash=cash[0], config=config)
        t = done
    nf = int(istate[kernel.N_FILLS])
    return {
        "t": fills[0, :nf].copy(),
        "sym": fills[1, :nf].copy(),
        "side": fills[2, :nf].astype(np.int8),
        "qty": fcols[0, :nf].copy(),
        "price": fcols[1, :nf].copy(),
        "ref": fcols[2, :nf].copy(),
        "commission": fcols[3, :nf].copy(),
        "reason": fills[3, :nf].astype(np.int8),
        "equity": curves[0].copy(),
        "cash": curves[1].copy(),
        "positions_value": curves[2].copy(),
        "n_positions": n_pos,
    }


def _or(limit: int | None) -> int:
    return -1 if limit is None else int(limit)


def _book_orders(
    rule: TopkRule,
    t: int,
    st: np.ndarray,
    istate: np.ndarray,
    pend_order: np.ndarray,
    *,
    equity: float,
    cash: float,
    config: BacktestConfig,
) -> None:
    """Step 4 with a target-book rule: its exits and sized entries at the close of ``t``, as the
    kernel's pending orders (state rows as in :func:`stockflow.backtest.kernel.run_sessions`)."""
    qty, pend_qty, held, pend_exit, mark = st[0], st[5], st[6], st[7], st[8]
    n = qty.size
    orders_left = n if config.max_orders_per_session is None else config.max_orders_per_session
    ex, order, q = rule.decide(t, held != 0.0, qty, mark, equity=equity, cash=cash)
    pend_exit[:] = 0.0
    pend_exit[ex[:orders_left]] = 1.0
    istate[kernel.N_PEND] = min(ex.size, orders_left)
    left = max(orders_left - int(istate[kernel.N_PEND]), 0)
    take = order[:left] if order.size and left else _EMPTY_INT
    pend_qty[take] = q[: take.size]
    pend_order[: take.size] = take
    istate[kernel.N_ORDER] = take.size


def run_backtest(
    bars: pl.DataFrame | Panel,
    signals: pl.DataFrame,
    config: BacktestConfig,
    *,
    strategy: str = "strategy",
    start: dt.date | None = None,
    end: dt.date | None = None,
    benchmarks: bool = True,
    book: BookSpec | None = None,
) -> BacktestResult:
    """Backtest ``signals`` (symbol, session, signal, strength[, size]) on ``bars`` with ``config``.

    ``bars`` may be a canonical bar frame (cut to ``start``..``end``) or a prepared :class:`Panel`.
    Returns a :class:`BacktestResult` with the equity curve, fills, round-trip trades, metrics and,
    when ``benchmarks``, buy-and-hold and equal-weight benchmarks of the same universe and costs.
    ``book``: trade the live top-k target book over its scores instead of ``signals``.
    """
    t0 = time.perf_counter()
    panel = bars if isinstance(bars, Panel) else build_panel(bars, start=start, end=end)
    sig = align_signals(signals, panel)
    raw = simulate(panel, sig, config, TopkRule(book, panel) if book is not None else None)
    result = build_result(strategy, panel, config, raw, seconds=time.perf_counter() - t0)
    if benchmarks:
        result = dataclasses.replace(result, benchmarks=benchmark_results(panel, config))
    return result
