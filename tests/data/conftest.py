"""Helpers for the data-layer tests: small real-calendar bar tables, settings, the Alpaca data fake."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockflow.calendar import sessions as xnys_sessions
from stockflow.config import Settings, load_settings
from tests.fakes.alpaca_data import KEY_ID, SECRET, FakeAlpacaData, serve

HEADER = ["symbol", "date", "open", "high", "low", "close", "volume"]


def trading_days(n: int, start: dt.date = dt.date(2024, 1, 2)) -> list[dt.date]:
    """``n`` consecutive XNYS sessions from ``start``."""
    import numpy as np

    arr = xnys_sessions("XNYS")
    return [d.astype(object) for d in arr[arr >= np.datetime64(start)][:n]]


def bar_rows(symbol: str, days: list[dt.date], base: float = 100.0) -> list[dict[str, Any]]:
    """Plausible bars: a gentle zig-zag (moves under 2%), high/low around open/close."""
    rows = []
    for i, d in enumerate(days):
        close = base * (1 + 0.01 * ((i % 5) - 2) / 2 + 0.001 * i)
        open_ = close * 0.995
        rows.append(
            {
                "symbol": symbol,
                "date": d.isoformat(),
                "open": round(open_, 4),
                "high": round(close * 1.01, 4),
                "low": round(open_ * 0.99, 4),
                "close": round(close, 4),
                "volume": 1_000_000 + i,
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> Path:
    """Write rows (dicts, values written as given) to ``path`` (gzip when it ends in .gz)."""
    header = header or HEADER
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as f:  # type: ignore[operator]
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])
    return path


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with data and reports under ``tmp_path``."""
    return load_settings(data_dir=tmp_path / "data", reports_dir=tmp_path / "reports", **overrides)


@pytest.fixture
def fake_alpaca() -> Iterator[tuple[FakeAlpacaData, str]]:
    """The Alpaca market-data fake on loopback: (state, base URL)."""
    fake = FakeAlpacaData(page_size=5)
    with serve(fake) as url:
        yield fake, url


def alpaca_settings(
    tmp_path: Path, url: str, key: str = KEY_ID, secret: str = SECRET, **data: Any
) -> Settings:
    """Settings pointing the alpaca source at the fake, with fast 429 retries."""
    return make_settings(
        tmp_path,
        data={"alpaca_data_url": url, "rate_limit_wait_s": 0.01, "symbols": ["AAPL", "MSFT"], **data},
        broker={"alpaca_api_key": key, "alpaca_secret_key": secret},
    )
