"""Performance metrics of an equity curve and of round-trip trades (pure numpy, daily sessions).

Conventions: returns are simple daily returns of the equity curve with the initial cash as the first
point; annualisation uses 252 sessions a year; the risk-free rate is 0. Undefined values (a ratio with
a zero denominator) are NaN, infinite profit factors (no losing trade) are ``inf``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

PERIODS_PER_YEAR = 252

#: Metric names in display order, with a short description (used by reports and tests).
METRIC_DOCS: dict[str, str] = {
    "total_return": "final equity / initial cash - 1",
    "annual_return": "compound annual growth rate over the sessions traded",
    "volatility": "annualised standard deviation of daily returns",
    "sharpe": "annualised mean / std of daily returns (risk-free 0)",
    "sortino": "annualised mean / downside deviation of daily returns",
    "calmar": "annual return / |max drawdown|",
    "max_drawdown": "largest peak-to-trough fall of equity (negative fraction)",
    "max_drawdown_duration": "longest run of sessions below a previous equity peak",
    "win_rate": "share of round trips with positive net P&L",
    "profit_factor": "gross profit / gross loss of round trips",
    "avg_win": "mean net P&L of winning round trips",
    "avg_loss": "mean net P&L of losing round trips (negative)",
    "turnover": "traded notional per year / mean equity",
    "exposure": "mean of positions value / equity",
    "n_trades": "number of round trips",
    "n_orders": "number of fills",
    "costs_paid": "commissions + slippage paid",
    "final_equity": "equity after the last session",
}


def daily_returns(equity: np.ndarray, initial: float) -> np.ndarray:
    """Simple returns of ``equity`` with ``initial`` as the point before the first session."""
    curve = np.concatenate([[initial], np.asarray(equity, dtype=float)])
    return curve[1:] / curve[:-1] - 1.0  # type: ignore[no-any-return]


def drawdown(equity: np.ndarray, initial: float) -> np.ndarray:
    """Drawdown per session: equity / running peak (initial cash included) - 1, <= 0."""
    curve = np.concatenate([[initial], np.asarray(equity, dtype=float)])
    peak = np.maximum.accumulate(curve)
    return (curve / peak - 1.0)[1:]  # type: ignore[no-any-return]


def _longest_true_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return int((ends - starts).max())


def _div(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(b):
        return math.nan
    return a / b


def equity_metrics(equity: np.ndarray, initial: float) -> dict[str, float]:
    """Return, risk and drawdown metrics of a daily equity curve starting from ``initial``."""
    eq = np.asarray(equity, dtype=float)
    n = len(eq)
    if n == 0:
        return {
            k: math.nan
            for k in (
                "total_return",
                "annual_return",
                "volatility",
                "sharpe",
                "sortino",
                "calmar",
                "max_drawdown",
                "max_drawdown_duration",
                "final_equity",
            )
        }
    r = daily_returns(eq, initial)
    total = eq[-1] / initial - 1.0
    years = n / PERIODS_PER_YEAR
    annual = (eq[-1] / initial) ** (1.0 / years) - 1.0 if eq[-1] > 0 else -1.0
    std = float(r.std(ddof=1)) if n > 1 else math.nan
    mean = float(r.mean())
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    dd = drawdown(eq, initial)
    mdd = float(dd.min())
    return {
        "total_return": float(total),
        "annual_return": float(annual),
        "volatility": std * math.sqrt(PERIODS_PER_YEAR) if n > 1 else math.nan,
        "sharpe": _div(mean, std) * math.sqrt(PERIODS_PER_YEAR),
        "sortino": _div(mean, downside) * math.sqrt(PERIODS_PER_YEAR),
        "calmar": _div(float(annual), abs(mdd)),
        "max_drawdown": mdd,
        "max_drawdown_duration": float(_longest_true_run(dd < 0)),
        "final_equity": float(eq[-1]),
    }


def trade_metrics(pnl: np.ndarray) -> dict[str, float]:
    """Win rate, profit factor and average win/loss of round-trip net P&L."""
    p = np.asarray(pnl, dtype=float)
    wins, losses = p[p > 0], p[p < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    pf = gross_win / gross_loss if gross_loss > 0 else (math.inf if gross_win > 0 else math.nan)
    return {
        "win_rate": float(len(wins) / len(p)) if len(p) else math.nan,
        "profit_factor": pf,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
        "n_trades": float(len(p)),
    }


def compute_metrics(
    equity: np.ndarray,
    initial: float,
    *,
    trade_pnl: np.ndarray,
    traded_notional: float,
    positions_value: np.ndarray,
    n_orders: int,
    costs_paid: float,
) -> dict[str, float]:
    """Every metric of :data:`METRIC_DOCS`, in that order."""
    eq = np.asarray(equity, dtype=float)
    out = equity_metrics(eq, initial)
    out.update(trade_metrics(trade_pnl))
    years = len(eq) / PERIODS_PER_YEAR if len(eq) else math.nan
    mean_eq = float(eq.mean()) if len(eq) else math.nan
    out["turnover"] = _div(traded_notional, mean_eq * years) if len(eq) else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        expo = np.where(eq > 0, np.asarray(positions_value, dtype=float) / eq, 0.0)
    out["exposure"] = float(expo.mean()) if len(eq) else math.nan
    out["n_orders"] = float(n_orders)
    out["costs_paid"] = float(costs_paid)
    return {k: out[k] for k in METRIC_DOCS}


def json_safe(metrics: Mapping[str, float]) -> dict[str, float | None]:
    """Metrics with NaN/inf as None, for JSON columns, artifacts and CSV."""
    return {k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in metrics.items()}
