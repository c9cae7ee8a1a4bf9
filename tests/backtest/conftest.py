"""Small synthetic bar panels and helpers for the backtest tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest

from tests.helpers import business_days


def random_bars(
    symbols: Sequence[str] = ("AAA", "BBB", "CCC", "DDD"),
    n_days: int = 400,
    *,
    seed: int = 0,
    vol: float = 0.02,
    drift: float = 0.0003,
    start: dt.date = dt.date(2015, 1, 5),
) -> pl.DataFrame:
    """Geometric random walks with consistent OHLC."""
    rng = np.random.default_rng(seed)
    days = business_days(start, n_days)
    frames = []
    for k, sym in enumerate(symbols):
        close = 20.0 * (1 + k) * np.exp(np.cumsum(rng.normal(drift, vol, n_days)))
        open_ = close * np.exp(rng.normal(0, vol / 2, n_days))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, n_days)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, n_days)))
        frames.append(
            pl.DataFrame(
                {
                    "symbol": sym,
                    "session": days,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.lognormal(13, 0.3, n_days),
                }
            )
        )
    return pl.concat(frames).sort(["symbol", "session"])


def bars_from_prices(
    symbol: str,
    rows: Sequence[tuple[float, float, float, float]],
    start: dt.date = dt.date(2020, 1, 6),
) -> pl.DataFrame:
    """Bars of one symbol from (open, high, low, close) tuples on consecutive weekdays."""
    days = business_days(start, len(rows))
    o, h, lo, c = ([float(v) for v in x] for x in zip(*rows, strict=True))
    return pl.DataFrame(
        {
            "symbol": symbol,
            "session": days,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": [1e6] * len(rows),
        }
    ).with_columns(pl.col(["open", "high", "low", "close", "volume"]).cast(pl.Float64))


def signal_frame(rows: Sequence[tuple[str, dt.date, int]], strength: float = 1.0) -> pl.DataFrame:
    """A signal frame from (symbol, session, signal) rows."""
    return pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "session": [r[1] for r in rows],
            "signal": [r[2] for r in rows],
            "strength": [strength] * len(rows),
        },
        schema={"symbol": pl.Utf8, "session": pl.Date, "signal": pl.Int8, "strength": pl.Float64},
    )


@pytest.fixture
def bars() -> pl.DataFrame:
    """Four symbols, 400 sessions."""
    return random_bars()
