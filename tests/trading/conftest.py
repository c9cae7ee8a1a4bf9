"""Fixtures of the trading tests: the fake Alpaca server and a broker harness over paper and alpaca."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.base import Broker
from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings
from stockflow.domain.market import BAR_SCHEMA
from tests.fakes.alpaca_trading import API_KEY, SECRET_KEY, FakeAlpacaTrading

D0 = dt.date(2024, 1, 2)
PRICES = {"AAPL": 100.0, "MSFT": 50.0, "IBM": 20.0}


def alpaca_settings(url: str, **kw: Any) -> BrokerSettings:
    """Settings of an alpaca broker pointing at the fake server."""
    return BrokerSettings(
        kind="alpaca",
        alpaca_api_key=API_KEY,
        alpaca_secret_key=SECRET_KEY,
        alpaca_url_override=url,
        **{"http_timeout_s": 1.0, **kw},
    )


def bars_frame(
    session: dt.date,
    prices: dict[str, float],
    low: dict[str, float] | None = None,
    open_: dict[str, float] | None = None,
) -> pl.DataFrame:
    """One session of bars: open (default = price), high = max, low (default = min), close = price."""
    rows = []
    for sym, p in prices.items():
        o = (open_ or {}).get(sym, p)
        lo = (low or {}).get(sym, min(o, p))
        rows.append(
            {
                "symbol": sym,
                "session": session,
                "open": o,
                "high": max(o, p),
                "low": lo,
                "close": p,
                "volume": 1e6,
            }
        )
    return pl.DataFrame(rows, schema=BAR_SCHEMA)


@dataclass
class Harness:
    """One broker plus a way to let the market move (the next bar for paper, fills for the fake)."""

    kind: str
    broker: Broker
    fake: FakeAlpacaTrading | None = None
    session: dt.date = D0
    prices: dict[str, float] = field(default_factory=lambda: dict(PRICES))

    def split(self, symbol: str, ratio: int) -> None:
        """Next session opens after a ``ratio``-for-1 split of ``symbol`` (paper: a split factor on the
        bar; the fake: Alpaca's announcement, position and price changed)."""
        self.prices[symbol] = self.prices[symbol] / ratio
        self.session += dt.timedelta(days=1)
        if isinstance(self.broker, PaperBroker):
            bars = bars_frame(self.session, self.prices).with_columns(
                pl.when(pl.col("symbol") == symbol).then(float(ratio)).otherwise(1.0).alias("split_factor")
            )
            self.broker.process_bars(bars)
        else:
            assert self.fake is not None
            self.fake.next_day()
            self.fake.split(symbol, ratio)

    def advance(self, prices: dict[str, float] | None = None, *, low: dict[str, float] | None = None) -> None:
        """Next session: working market orders fill at ``prices``; sell stops at or above ``low`` trigger."""
        self.prices.update(prices or {})
        self.session += dt.timedelta(days=1)
        if isinstance(self.broker, PaperBroker):
            self.broker.process_bars(bars_frame(self.session, self.prices, low))
        else:
            assert self.fake is not None
            self.fake.fill_working(self.prices, low=low)


@pytest.fixture
def fake_alpaca() -> Iterator[FakeAlpacaTrading]:
    """A running fake Alpaca trading server with AAPL/MSFT/IBM prices; fills at once."""
    with FakeAlpacaTrading(prices=PRICES) as fake:
        yield fake


@pytest.fixture
def alpaca(fake_alpaca: FakeAlpacaTrading) -> AlpacaBroker:
    """The real alpaca-py client behind our adapter, talking to the fake server."""
    return AlpacaBroker(alpaca_settings(fake_alpaca.url))


def make_harness(kind: str, engine: Engine) -> tuple[Harness, FakeAlpacaTrading | None]:
    """A harness whose orders fill on ``advance`` (paper: next bar; fake: fill_mode=accept)."""
    if kind == "paper":
        broker = PaperBroker(engine, BrokerSettings(slippage_bps=0))
        broker.process_bars(bars_frame(D0, PRICES))
        return Harness("paper", broker), None
    fake = FakeAlpacaTrading(prices=PRICES, fill_mode="accept").start()
    return Harness("alpaca", AlpacaBroker(alpaca_settings(fake.url)), fake), fake


@pytest.fixture(params=["paper", "alpaca"])
def harness(request: pytest.FixtureRequest, sqlite_engine: Engine) -> Iterator[Harness]:
    """The broker contract's subject: the paper broker, then alpaca against the fake server."""
    h, fake = make_harness(request.param, sqlite_engine)
    try:
        yield h
    finally:
        if fake is not None:
            fake.stop()
