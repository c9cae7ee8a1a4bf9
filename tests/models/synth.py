"""Synthetic daily bars with a known amount of predictability, for fast model tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from tests.helpers import business_days


def synthetic_bars(
    symbols: tuple[str, ...] = ("AAA", "BBB", "CCC"),
    n_days: int = 900,
    *,
    reversal: float = 0.0,
    drift: float = 0.0003,
    vol: float = 0.015,
    seed: int = 0,
    start: dt.date = dt.date(2010, 1, 4),
) -> pl.DataFrame:
    """Bars whose daily return is ``-reversal * previous return + noise``: ``reversal > 0`` plants a
    short-term reversal a model can learn from ``ret_1`` and the rule baselines (which bet on
    continuation) cannot; ``reversal = 0`` is a pure random walk with drift."""
    rng = np.random.default_rng(seed)
    days = business_days(start, n_days)
    frames = []
    for k, sym in enumerate(symbols):
        eps = rng.normal(drift, vol, n_days)
        r = np.zeros(n_days)
        for t in range(1, n_days):
            r[t] = -reversal * r[t - 1] + eps[t]
        close = 50.0 * (1 + k) * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, vol / 4, n_days))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 3, n_days)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 3, n_days)))
        volume = rng.lognormal(13, 0.3, n_days)
        frames.append(
            pl.DataFrame(
                {
                    "symbol": sym,
                    "session": days,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pl.concat(frames).sort(["symbol", "session"])
