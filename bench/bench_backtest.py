"""Backtest benchmark: five strategies x 488 symbols x 2005-2017 from the shared S&P 500 file.

Figures:

- ``signals_s``: time to compute each strategy's signals (TA-Lib per symbol; ensemble = vote of four);
- ``live_rules``: the engine with the live loop's rules (risk sizing with ``position_size``, 3% stops
  trailing 2% after +5%, open-position/exposure limits, paper-broker costs) on a $1M account:
  wall time per strategy (panel + signal alignment + session loop + trades + metrics), orders/s;
- ``vs_vectorbt``: the same signals and costs in a configuration vectorbt can reproduce exactly
  (fixed size of floor($10k / signal-day close) shares per entry, no stops or limits, fills at the next
  open with 5 bps slippage, 0.1% + $1 commission per order, cash never binding, positions left open at
  the end): our engine and ``vectorbt.Portfolio.from_signals`` side by side from the same wide inputs
  (``ours_s``: session loop + fills + trades + metrics; vectorbt: simulation + value + orders + trades),
  also ours including the long->wide signal alignment, vectorbt cold (first call: numba compiles) and
  warm, with a check that orders, prices and the equity curve match;
- ``peak_rss_mb`` after our runs (before vectorbt is imported) and the tracemalloc peak of one run.

Run: ``.venv/bin/python -m bench backtest`` (``make bench`` installs vectorbt with ``uv sync --group bench``).
"""

from __future__ import annotations

import datetime as dt
import gc
import resource
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "sp500_cc0"
    / "sp500_2018_members_1962-2017_daily.csv.gz"
)
START, END = dt.date(2005, 1, 1), dt.date(2017, 12, 31)
NOTIONAL = 10_000.0
INIT_CASH = 10_000_000.0


def load_bars() -> pl.DataFrame:
    """The shared file as canonical bars, 2005-2017."""
    return (
        pl.scan_csv(DATA, try_parse_dates=True)
        .rename({"date": "session"})
        .filter((pl.col("session") >= START) & (pl.col("session") <= END))
        .select(
            pl.col("symbol").cast(pl.Utf8),
            pl.col("session").cast(pl.Date),
            *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
        )
        .sort("symbol", "session")
        .collect()
    )


def _best(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def vectorbt_inputs(panel: Any, sp: Any) -> dict[str, np.ndarray]:
    """Entries, exits and sizes that reproduce our engine's order rules in vectorbt.

    An entry decided at the close of t (an entry signal, a bar, at least one share) is an entry signal at
    t+1 with size floor(notional / close[t]); an exit wish (flat target, kept through sessions without
    an opinion, reset by a long target) is an exit signal at t+1. vectorbt ignores entries while in a
    position and exits while flat, as our engine does.
    """
    from stockflow.backtest.panel import NO_OPINION

    T, N = panel.shape
    tgt = sp.target
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.floor(NOTIONAL * sp.size / panel.close)
    ok = sp.entry & panel.valid & (q > 0)
    wish = np.full((T, N), np.nan)
    wish[(tgt == 0) | (tgt == -1)] = 1.0
    wish[tgt == 1] = 0.0
    idx = np.where(np.isnan(wish), -1, np.arange(T)[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    x = np.where(idx >= 0, np.take_along_axis(np.nan_to_num(wish), np.maximum(idx, 0), axis=0), 0.0) > 0
    _ = NO_OPINION
    entries = np.zeros((T, N), dtype=bool)
    exits = np.zeros((T, N), dtype=bool)
    size = np.full((T, N), np.nan)
    entries[1:] = ok[:-1]
    exits[1:] = x[:-1]
    size[1:] = np.where(ok[:-1], q[:-1], np.nan)
    return {"entries": entries, "exits": exits, "size": size}


def run_vectorbt(panel: Any, inputs: dict[str, np.ndarray], costs: Any) -> dict[str, Any]:
    """vectorbt's portfolio on the same inputs; returns final value, orders and the equity curve."""
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(panel.sessions)
    cols = list(panel.symbols)

    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a, index=index, columns=cols)

    pf = vbt.Portfolio.from_signals(
        frame(panel.close),
        entries=frame(inputs["entries"]),
        exits=frame(inputs["exits"]),
        price=frame(panel.open),
        size=frame(inputs["size"]),
        size_type="amount",
        fees=costs.commission_pct,
        fixed_fees=costs.commission_per_order,
        slippage=costs.slip,
        init_cash=INIT_CASH,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq="1D",
    )
    value = pf.value()
    orders = pf.orders.records
    trades = pf.trades.records
    return {
        "final_value": float(value.iloc[-1]),
        "equity": value.to_numpy(),
        "orders": orders,
        "n_orders": len(orders),
        "n_trades": len(trades),
        "total_return": float(pf.total_return()),
    }


def run() -> dict[str, Any]:
    from stockflow.backtest.config import BacktestConfig, Costs
    from stockflow.backtest.engine import simulate
    from stockflow.backtest.ensemble import Ensemble
    from stockflow.backtest.panel import align_signals, build_panel
    from stockflow.backtest.result import build_result
    from stockflow.backtest.strategies import BollingerZScore, MacdTrend, RsiReversion, SmaCrossover

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    bars = load_bars()
    out["load_s"] = round(time.perf_counter() - t0, 2)
    out["rows"] = bars.height
    out["symbols"] = bars.get_column("symbol").n_unique()

    t0 = time.perf_counter()
    panel = build_panel(bars)
    out["panel_s"] = round(time.perf_counter() - t0, 3)
    out["sessions"] = panel.shape[0]
    out["invalid_bars"] = panel.invalid_bars

    rules = [SmaCrossover(), RsiReversion(), MacdTrend(), BollingerZScore()]
    signals: dict[str, pl.DataFrame] = {}
    sig_s: dict[str, float] = {}
    for strat in rules:
        t0 = time.perf_counter()
        signals[strat.name] = strat.signals(bars)
        sig_s[strat.name] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    signals["ensemble"] = Ensemble(members=tuple(rules), weighting="performance").combine(panel, signals)
    sig_s["ensemble"] = round(time.perf_counter() - t0, 3)
    out["signals_s"] = sig_s

    costs = Costs(slippage_bps=5.0, commission_per_order=1.0, commission_pct=0.001)
    live = BacktestConfig(
        initial_cash=1_000_000.0,
        costs=costs,
        max_open_positions=50,
        max_total_exposure=1.0,
        max_position_weight=0.05,
        max_orders_per_session=None,
    )
    comparable = BacktestConfig(
        initial_cash=INIT_CASH,
        costs=costs,
        sizing="fixed_notional",
        fixed_notional=NOTIONAL,
        use_stops=False,
        max_open_positions=None,
        max_total_exposure=None,
        close_at_end=False,
    )

    def ours(sig: pl.DataFrame, cfg: BacktestConfig) -> Any:
        sp = align_signals(sig, panel)
        raw = simulate(panel, sp, cfg)
        return build_result("x", panel, cfg, raw)

    def ours_from_panel(sp: Any, cfg: BacktestConfig) -> Any:
        raw = simulate(panel, sp, cfg)
        return build_result("x", panel, cfg, raw)

    live_fig: dict[str, Any] = {}
    total_orders, total_s = 0, 0.0
    for name, sig in signals.items():
        secs, res = _best(lambda sig=sig: ours(sig, live), repeat=2)
        n = int(res.metrics["n_orders"])
        total_orders += n
        total_s += secs
        live_fig[name] = {
            "wall_s": round(secs, 3),
            "orders": n,
            "orders_per_s": round(n / secs),
            "total_return": round(res.metrics["total_return"], 4),
            "sharpe": round(res.metrics["sharpe"], 3),
        }
    out["live_rules"] = live_fig
    out["live_rules_total_s"] = round(total_s, 2)
    out["live_rules_orders_per_s"] = round(total_orders / total_s)

    ours_cmp: dict[str, Any] = {}
    ours_total = 0.0
    ours_e2e_total = 0.0
    for name, sig in signals.items():
        e2e, _ = _best(lambda sig=sig: ours(sig, comparable))
        sp = align_signals(sig, panel)
        secs, res = _best(lambda sp=sp: ours_from_panel(sp, comparable))
        ours_total += secs
        ours_e2e_total += e2e
        ours_cmp[name] = (secs, e2e, res)
    out["peak_rss_mb_before_vectorbt"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    tracemalloc.start()
    ours(signals["macd_trend"], comparable)
    out["tracemalloc_peak_mb_one_run"] = round(tracemalloc.get_traced_memory()[1] / 2**20)
    tracemalloc.stop()

    try:
        import vectorbt  # noqa: F401
    except ImportError:
        out["vs_vectorbt"] = (
            "vectorbt not installed: run `uv sync --group dev --group bench` (make bench does)"
        )
        return out

    cmp: dict[str, Any] = {}
    vbt_warm_total = 0.0
    cold_s = None
    all_match = True
    for name, sig in signals.items():
        sp = align_signals(sig, panel)
        t0 = time.perf_counter()
        inputs = vectorbt_inputs(panel, sp)
        prep_s = time.perf_counter() - t0
        if cold_s is None:
            t0 = time.perf_counter()
            run_vectorbt(panel, inputs, costs)
            cold_s = time.perf_counter() - t0
        vsecs, v = _best(lambda inputs=inputs: run_vectorbt(panel, inputs, costs))
        vbt_warm_total += vsecs
        secs, e2e, res = ours_cmp[name]
        fills = res.fills
        ours_final = res.metrics["final_equity"]
        rel = abs(ours_final - v["final_value"]) / INIT_CASH
        curve_diff = float(np.max(np.abs(res.equity.get_column("equity").to_numpy() - v["equity"])))
        o = v["orders"]
        vbt_prices = np.sort(o["price"])
        our_prices = np.sort(fills.get_column("price").to_numpy())
        same_orders = len(o) == fills.height and np.allclose(vbt_prices, our_prices, rtol=1e-12)
        match = same_orders and rel < 1e-9
        all_match &= match
        cmp[name] = {
            "ours_s": round(secs, 3),
            "ours_incl_signal_alignment_s": round(e2e, 3),
            "vectorbt_warm_s": round(vsecs, 3),
            "vectorbt_input_prep_s": round(prep_s, 3),
            "speed_ratio_vectorbt_over_ours": round(vsecs / secs, 2),
            "orders_ours": fills.height,
            "orders_vectorbt": len(o),
            "final_equity_ours": round(ours_final, 2),
            "final_equity_vectorbt": round(v["final_value"], 2),
            "max_abs_equity_curve_diff": curve_diff,
            "match": bool(match),
        }
    out["vs_vectorbt"] = cmp
    out["vectorbt_cold_first_call_s"] = round(cold_s or 0.0, 2)
    out["ours_total_s"] = round(ours_total, 2)
    out["ours_incl_alignment_total_s"] = round(ours_e2e_total, 2)
    out["vectorbt_warm_total_s"] = round(vbt_warm_total, 2)
    out["ratio_vectorbt_warm_over_ours"] = round(vbt_warm_total / ours_total, 2)
    out["ratio_vectorbt_warm_over_ours_incl_alignment"] = round(vbt_warm_total / ours_e2e_total, 2)
    out["ratio_vectorbt_incl_compile_over_ours"] = round((vbt_warm_total + (cold_s or 0)) / ours_total, 2)
    out["results_match"] = bool(all_match)
    return out
