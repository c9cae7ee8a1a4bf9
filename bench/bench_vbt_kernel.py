"""Our backtest engine's simulation vs vectorbt's numba simulation kernel on the SAME numpy arrays.

``bench_backtest`` compares with ``vectorbt.Portfolio.from_signals`` on DataFrames (pandas wrapping and
result objects included). Here vectorbt's kernel ``vectorbt.portfolio.nb.simulate_from_signals_nb`` is
called directly with the arrays (entries, exits, sizes, open prices, costs; one cash-sharing group, auto
call sequence), beside ``stockflow.backtest.engine.simulate`` on the aligned panel: cells (sessions x
symbols) per second for both in one run, the 5 strategies on the shared file (488 symbols, 2005-2017),
and the results compared (orders, fill prices, final equity). Both kernels are compiled before timing;
the compile of ours (numba, ``cache=True``) is measured apart in fresh processes: with an empty cache
directory (cold: what the first run on a machine pays) and again with the cache it left (warm).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from bench.bench_backtest import INIT_CASH, NOTIONAL, _best, load_bars, vectorbt_inputs


def kernel_inputs(panel: Any, inputs: dict[str, np.ndarray], costs: Any) -> dict[str, Any]:
    """Arguments of ``simulate_from_signals_nb`` (plain arrays, broadcast to the panel's shape)."""
    T, N = panel.shape
    full = np.full((T, N), 0.0)
    return {
        "target_shape": (T, N),
        "group_lens": np.array([N], dtype=np.int64),
        "init_cash": np.array([INIT_CASH]),
        "call_seq": np.tile(np.arange(N, dtype=np.int64), (T, 1)),
        "entries": inputs["entries"],
        "exits": inputs["exits"],
        "size": inputs["size"],
        "price": panel.open,
        "size_type": np.zeros((1, 1), dtype=np.int64),  # amount
        "fees": full + costs.commission_pct,
        "fixed_fees": full + costs.commission_per_order,
        "slippage": full + costs.slip,
        "close": panel.close,
        "auto_call_seq": True,
        "use_stops": False,
    }


def kernel(args: dict[str, Any]) -> np.ndarray:
    """vectorbt's numba simulation: the order records."""
    from vectorbt.portfolio import nb

    a = dict(args)
    a["call_seq"] = a["call_seq"].copy()  # the kernel sorts it in place
    orders, _ = nb.simulate_from_signals_nb(**a)
    return orders  # type: ignore[no-any-return]


def final_value(orders: np.ndarray, close: np.ndarray) -> float:
    """Cash plus holdings at the last close (forward-filled), from vectorbt's order records."""
    side = np.where(orders["side"] == 0, 1.0, -1.0)  # 0 buy, 1 sell
    cash = INIT_CASH - np.sum(side * orders["size"] * orders["price"]) - np.sum(orders["fees"])
    pos = np.zeros(close.shape[1])
    np.add.at(pos, orders["col"], side * orders["size"])
    last = np.array([c[~np.isnan(c)][-1] if (~np.isnan(c)).any() else 0.0 for c in close.T])
    return float(cash + np.sum(pos * last))


_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.engine import simulate
from stockflow.backtest.panel import Panel, SignalPanel
t1 = time.perf_counter()
p = Panel(np.arange(3).astype("datetime64[D]"), ("A",), *[np.ones((3, 1))] * 4, np.ones((3, 1), bool))
s = SignalPanel(np.ones((3, 1), np.int8), np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 1), bool))
t2 = time.perf_counter()
simulate(p, s, BacktestConfig())
print(time.perf_counter() - t2, t1 - t0)
"""


def compile_seconds() -> dict[str, float]:
    """Seconds of our kernel's first call in a fresh process with an empty numba cache (cold) and with
    the cache it wrote (warm), besides the import."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "warm"):
            res = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True, check=True
            )
            first, imp = (float(x) for x in res.stdout.split())
            out[f"ours_first_call_{label}_cache_s"] = round(first, 2)
            out[f"ours_import_{label}_cache_s"] = round(imp, 2)
    return out


def run() -> dict[str, Any]:
    """Cells/s of both simulations, side by side, and whether the results agree."""
    from stockflow.backtest.config import BacktestConfig, Costs
    from stockflow.backtest.engine import simulate
    from stockflow.backtest.ensemble import Ensemble
    from stockflow.backtest.panel import align_signals, build_panel
    from stockflow.backtest.result import build_result
    from stockflow.backtest.strategies import BollingerZScore, MacdTrend, RsiReversion, SmaCrossover

    try:
        import vectorbt  # noqa: F401
    except ImportError:
        return {"skipped": "vectorbt not installed: `uv sync --group dev --group bench` (make bench does)"}
    bars = load_bars()
    panel = build_panel(bars)
    T, N = panel.shape
    rules = [SmaCrossover(), RsiReversion(), MacdTrend(), BollingerZScore()]
    signals = {s.name: s.signals(bars) for s in rules}
    signals["ensemble"] = Ensemble(members=tuple(rules), weighting="performance").combine(panel, signals)
    costs = Costs(slippage_bps=5.0, commission_per_order=1.0, commission_pct=0.001)
    cfg = BacktestConfig(
        initial_cash=INIT_CASH, costs=costs, sizing="fixed_notional", fixed_notional=NOTIONAL,
        use_stops=False, max_open_positions=None, max_total_exposure=None, close_at_end=False,
    )  # fmt: skip
    out: dict[str, Any] = {"sessions": T, "symbols": N, "cells_per_run": T * N}
    t0 = time.perf_counter()
    first = align_signals(signals["sma_crossover"], panel)
    kernel(kernel_inputs(panel, vectorbt_inputs(panel, first), costs))
    out["vectorbt_kernel_compile_s"] = round(time.perf_counter() - t0, 2)
    out.update(compile_seconds())
    simulate(panel, first, cfg)  # ours: loaded from (or written to) the numba cache before timing
    ours_total = vbt_total = 0.0
    all_equal = True
    per: dict[str, Any] = {}
    for name, sig in signals.items():
        sp = align_signals(sig, panel)
        args = kernel_inputs(panel, vectorbt_inputs(panel, sp), costs)
        s_ours, raw = _best(lambda sp=sp: simulate(panel, sp, cfg))
        s_vbt, orders = _best(lambda args=args: kernel(args))
        res = build_result(name, panel, cfg, raw)
        ours_final = float(res.metrics["final_equity"])
        vbt_final = final_value(orders, panel.close)
        same_prices = len(orders) == res.fills.height and np.allclose(
            np.sort(orders["price"]), np.sort(res.fills.get_column("price").to_numpy()), rtol=1e-12
        )
        equal = same_prices and abs(ours_final - vbt_final) / INIT_CASH < 1e-9
        all_equal &= equal
        ours_total += s_ours
        vbt_total += s_vbt
        per[name] = {
            "ours_cells_per_s": round(T * N / s_ours),
            "vectorbt_kernel_cells_per_s": round(T * N / s_vbt),
            "orders": len(orders),
            "final_equity_ours": round(ours_final, 2),
            "final_equity_vectorbt_kernel": round(vbt_final, 2),
            "equal": equal,
        }
    out["per_strategy"] = per
    out["ours_cells_per_s"] = round(5 * T * N / ours_total)
    out["vectorbt_kernel_cells_per_s"] = round(5 * T * N / vbt_total)
    out["ratio_ours_over_vectorbt_kernel"] = round(vbt_total / ours_total, 2)
    out["results_equal"] = all_equal
    out["target"] = "ours at least as fast as the kernel (ratio >= 1)"
    return out
