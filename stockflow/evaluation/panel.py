"""Statistics for a panel of stocks, with the SESSION as the unit.

On a panel the rows of one session are not independent: a market day lifts or sinks most stocks, and a
model's scores share a session-wide component (a volatility regime, say). A standard error computed as
if every (symbol, session) row were an independent draw is then far too small, and a model with no
skill at all "differs significantly" from chance. Every test here therefore reduces each session to one
number first (its cross-sectional IC, rank IC, or a portfolio's return) and tests the mean of that
per-session series with a Newey-West (HAC, Bartlett kernel) standard error, which also covers the
overlap of h-session labels (lags >= h - 1).

Public API::

    newey_west_se(x, lags=None) -> float           # HAC standard error of the mean of a series
    hac_t(x, lags=None) -> float | None             # mean / HAC se
    session_ic(p, target, sessions) -> DataFrame    # session, n, ic (Pearson), rank_ic (Spearman)
    ic_summary(daily, label_horizon=1) -> dict      # ic/rank_ic mean, std, IR, HAC t, n_sessions
    paired_ic_t(a, b, label_horizon=1) -> dict      # session-level test that a's rank IC beats b's
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl


def default_lags(n: int, label_horizon: int = 1) -> int:
    """Newey-West lag count: the usual ``floor(4 (n/100)^(2/9))``, at least ``label_horizon - 1`` (the
    overlap of consecutive h-session labels), at most ``n - 1``."""
    if n < 2:
        return 0
    auto = math.floor(4 * (n / 100.0) ** (2.0 / 9.0))
    return max(0, min(max(auto, label_horizon - 1), n - 1))


def newey_west_se(x: np.ndarray | Sequence[float], lags: int | None = None) -> float:
    """HAC (Newey-West, Bartlett weights) standard error of the mean of the series ``x`` (NaN when fewer
    than two finite values)."""
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    n = a.size
    if n < 2:
        return float("nan")
    lag = default_lags(n) if lags is None else max(0, min(int(lags), n - 1))
    d = a - a.mean()
    s = float(d @ d) / n
    for k in range(1, lag + 1):
        s += 2.0 * (1.0 - k / (lag + 1.0)) * float(d[k:] @ d[:-k]) / n
    return math.sqrt(max(s, 0.0) / n)


def hac_t(x: np.ndarray | Sequence[float], lags: int | None = None) -> float | None:
    """t-statistic of the mean of ``x`` with a Newey-West standard error; None when undefined."""
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    se = newey_west_se(a, lags)
    if not math.isfinite(se) or se <= 0:
        return None
    return float(a.mean() / se)


def session_ic(
    p: np.ndarray, target: np.ndarray, sessions: np.ndarray | Sequence[Any], *, min_symbols: int = 3
) -> pl.DataFrame:
    """Per-session cross-sectional IC (Pearson) and rank IC (Spearman) of scores ``p`` with ``target``.

    Sessions with fewer than ``min_symbols`` finite rows, or where scores or targets are all equal, are
    left out. Columns: session, n, ic, rank_ic (sorted by session).
    """
    df = pl.DataFrame(
        {
            "session": pl.Series(sessions),
            "p": np.asarray(p, dtype=np.float64),
            "r": np.asarray(target, dtype=np.float64),
        }
    ).filter(pl.col("p").is_finite() & pl.col("r").is_finite())
    return (
        df.group_by("session")
        .agg(
            pl.len().alias("n"),
            pl.col("p").n_unique().alias("np"),
            pl.col("r").n_unique().alias("nr"),
            pl.corr("p", "r").alias("ic"),
            pl.corr("p", "r", method="spearman").alias("rank_ic"),
        )
        .filter(
            (pl.col("n") >= min_symbols)
            & (pl.col("np") > 1)
            & (pl.col("nr") > 1)
            & pl.col("rank_ic").is_not_nan()
        )
        .select("session", "n", "ic", "rank_ic")
        .sort("session")
    )


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def series_summary(x: np.ndarray, prefix: str, *, label_horizon: int = 1) -> dict[str, Any]:
    """Mean, std, IR (mean/std), HAC t and count of a per-session series, keys prefixed."""
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return {f"{prefix}_mean": None, f"{prefix}_std": None, f"{prefix}_ir": None, f"{prefix}_t": None}
    std = float(a.std(ddof=1)) if n > 1 else float("nan")
    return {
        f"{prefix}_mean": float(a.mean()),
        f"{prefix}_std": _num(std),
        f"{prefix}_ir": _num(a.mean() / std) if n > 1 and std > 0 else None,
        f"{prefix}_t": hac_t(a, default_lags(n, label_horizon)),
    }


def ic_summary(daily: pl.DataFrame, *, label_horizon: int = 1) -> dict[str, Any]:
    """Session-level summary of a :func:`session_ic` frame: ``pearson_ic_*`` (Pearson) and ``ic_*`` (rank
    IC, Spearman: the IC every gate uses), each with mean, std, IR and Newey-West t; ``ic_n_sessions``;
    ``ic_positive_share``; ``ic_t_every_h`` (plain t on every h-th session, free of label overlap)."""
    rank = daily.get_column("rank_ic").to_numpy() if daily.height else np.zeros(0)
    pear = daily.get_column("ic").to_numpy() if daily.height else np.zeros(0)
    out: dict[str, Any] = {}
    out.update(series_summary(rank, "ic", label_horizon=label_horizon))
    out.update(series_summary(pear, "pearson_ic", label_horizon=label_horizon))
    out["ic_n_sessions"] = int(rank.size)
    out["ic_positive_share"] = float((rank > 0).mean()) if rank.size else None
    every = rank[::label_horizon]
    if every.size > 1 and float(every.std(ddof=1)) > 0:
        out["ic_t_every_h"] = float(every.mean() / (every.std(ddof=1) / math.sqrt(every.size)))
    else:
        out["ic_t_every_h"] = None
    return out


def paired_ic_t(a: pl.DataFrame, b: pl.DataFrame, *, label_horizon: int = 1) -> dict[str, Any]:
    """Does series ``a`` beat ``b`` session by session? Mean and Newey-West t of the per-session rank IC
    difference over the sessions both have (two :func:`session_ic` frames)."""
    j = a.select("session", pl.col("rank_ic").alias("a")).join(
        b.select("session", pl.col("rank_ic").alias("b")), on="session", how="inner"
    )
    d = (j.get_column("a") - j.get_column("b")).to_numpy() if j.height else np.zeros(0)
    return {
        "diff_mean": float(d.mean()) if d.size else None,
        "diff_t": hac_t(d, default_lags(d.size, label_horizon)) if d.size > 1 else None,
        "n_sessions": int(d.size),
    }
