"""The market as one run sees it, read from the store once (:func:`read_market`) and passed on.

A :class:`MarketView` holds the bars of the universe (and of every holding) from the earliest session
any stage needs up to the expected session: the paper broker's fills since its last processed session,
the protective stops, the last closes that size and judge the orders, and the bars predict builds the
features from (once: the rows it scored also explain the orders). Re-validation after an approval reads
prices only (:func:`latest_prices`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Engine

from stockflow.domain.orders import to_decimal
from stockflow.features import required_history
from stockflow.store.bars import load_bars

if TYPE_CHECKING:
    from stockflow.config import Settings


@dataclass(frozen=True)
class MarketView:
    """Bars ``start``..``session`` of ``symbols``, their latest sessions and last closes."""

    session: dt.date
    start: dt.date
    symbols: tuple[str, ...]
    bars: pl.DataFrame = field(repr=False)
    latest: Mapping[str, dt.date] = field(repr=False)  # last stored session per symbol (<= session)
    closes: Mapping[str, Decimal] = field(repr=False)  # last positive close per symbol

    def bars_since(self, start: dt.date) -> pl.DataFrame:
        """The bars from ``start`` on (e.g. since the paper broker's last processed session)."""
        return self.bars.filter(pl.col("session") >= start)

    def prices(self) -> dict[str, float]:
        """Last closes as floats (for sizing)."""
        return {s: float(p) for s, p in self.closes.items()}


def history_start(settings: Settings, expected: dt.date, extra_rows: int = 0) -> dt.date:
    """A first session that leaves enough bars for stable features on ``expected`` (calendar days with
    a margin for weekends and holidays)."""
    rows = required_history(settings.features) + extra_rows
    return expected - dt.timedelta(days=math.ceil(rows * 1.5) + 10)


def last_closes(bars: pl.DataFrame) -> dict[str, Decimal]:
    """The last finite positive close per symbol of ``bars``."""
    if bars.is_empty():
        return {}
    ok = bars.filter(pl.col("close").is_finite() & (pl.col("close") > 0))
    last = ok.group_by("symbol").agg(pl.col("close").sort_by("session").last())
    return {s: to_decimal(c) for s, c in last.iter_rows()}


def read_market(
    engine: Engine,
    symbols: Sequence[str],
    *,
    session: dt.date,
    start: dt.date,
    latest: Mapping[str, dt.date],
) -> MarketView:
    """Read the bars once (``latest`` comes from the session check's one query)."""
    syms = tuple(dict.fromkeys(symbols))
    bars = load_bars(engine, list(syms), start=start, end=session) if syms else pl.DataFrame()
    return MarketView(
        session=session,
        start=start,
        symbols=syms,
        bars=bars,
        latest=dict(latest),
        closes=last_closes(bars),
    )


def latest_prices(engine: Engine, symbols: Sequence[str], expected: dt.date) -> dict[str, Decimal]:
    """The last close per symbol on or before ``expected`` (re-validation after an approval)."""
    return last_closes(load_bars(engine, symbols, start=expected - dt.timedelta(days=30), end=expected))
