"""Real bars for the features tests: bokeh's bundled daily stocks (offline, 2000-2013)."""

from __future__ import annotations

import polars as pl
import pytest

from stockflow.config.sections import FeatureSettings
from stockflow.domain.market import conform_bars


def bokeh_bars(symbols: tuple[str, ...] = ("AAPL", "GOOG", "IBM", "MSFT")) -> pl.DataFrame:
    """Canonical bar frame of bokeh_sampledata's stocks (real, unadjusted daily bars)."""
    from bokeh_sampledata import stocks

    frames = []
    for sym in symbols:
        d = getattr(stocks, sym)
        frames.append(
            pl.DataFrame(
                {
                    "symbol": sym,
                    "session": pl.Series(d["date"]).str.to_date(),
                    **{
                        k: pl.Series(d[k], dtype=pl.Float64)
                        for k in ("open", "high", "low", "close", "volume")
                    },
                }
            )
        )
    return conform_bars(pl.concat(frames))


@pytest.fixture(scope="session")
def panel() -> pl.DataFrame:
    """Four symbols, 2000-2013 (GOOG from 2004)."""
    return bokeh_bars()


@pytest.fixture(scope="session")
def aapl() -> pl.DataFrame:
    """One symbol, 3270 bars."""
    return bokeh_bars(("AAPL",))


@pytest.fixture
def fsettings() -> FeatureSettings:
    """Default feature settings."""
    return FeatureSettings()
