"""The pattern-day-trader rule (FINRA 4210, as Alpaca applies it): an account under $25,000 equity may
make at most 3 day trades in any 5 business days; Alpaca refuses (403) the order that would make the
4th. A day trade is opening and closing the same symbol on the same trading day (a buy and a sell
filled that day; for stockflow, which never shorts, the sell of shares bought that day).

We count day trades from our own ledger of fills (the broker's fills, applied once) by New York trade
date, and refuse such an order BEFORE the broker does, with the reason ``denied:pdt``. The window is
the trade date and the 4 business days before it (weekdays minus the holidays given; without them,
holidays are counted as business days, so the window can hold only 4 sessions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from stockflow.db.engine import transaction
from stockflow.db.models_trading import FillRow
from stockflow.domain.orders import Side

NEW_YORK = ZoneInfo("America/New_York")
#: Day trades allowed in the window below the equity threshold.
MAX_DAY_TRADES = 3
WINDOW = 5
PDT_EQUITY = Decimal(25_000)


def business_window(day: dt.date, n: int = WINDOW, holidays: Iterable[dt.date] = ()) -> list[dt.date]:
    """``day`` and the business days before it, ``n`` in all, newest first."""
    skip = set(holidays)
    out: list[dt.date] = []
    d = day
    while len(out) < n:
        if d.weekday() < 5 and d not in skip:
            out.append(d)
        d -= dt.timedelta(days=1)
    return out


@dataclass(frozen=True)
class DayTrades:
    """Day trades in the window ending on ``trade_date`` and the sides already filled that day."""

    trade_date: dt.date
    count: int
    sides_today: Mapping[str, frozenset[Side]] = field(default_factory=dict)

    def would_day_trade(self, symbol: str, side: Side) -> bool:
        """True when a sell filled on the trade date closes a position bought that day (stockflow is
        long only: a buy after a same-day sell opens a position, it closes nothing)."""
        return side is Side.SELL and Side.BUY in self.sides_today.get(symbol, frozenset())

    def refusal(
        self, symbol: str, side: Side, equity: Decimal, min_equity: Decimal = PDT_EQUITY
    ) -> str | None:
        """Why the order is refused under the PDT rule, or None."""
        if equity >= min_equity or not self.would_day_trade(symbol, side) or self.count < MAX_DAY_TRADES:
            return None
        return (
            f"{symbol}: a {side.value} today would be day trade {self.count + 1} in {WINDOW} business days "
            f"with equity {equity:.2f} < {min_equity:.0f} (pattern day trader rule)"
        )

    def after(self, symbol: str, side: Side) -> DayTrades:
        """The state once an order of ``side`` in ``symbol`` has filled on the trade date."""
        sides = dict(self.sides_today)
        count = self.count + (1 if self.would_day_trade(symbol, side) else 0)
        sides[symbol] = sides.get(symbol, frozenset()) | {side}
        return DayTrades(self.trade_date, count, sides)


def day_trades(
    fills: Iterable[tuple[dt.date, str, Side]], trade_date: dt.date, holidays: Iterable[dt.date] = ()
) -> DayTrades:
    """Count day trades from ``(trade date, symbol, side)`` of fills (one per symbol and day with both
    sides filled) in the window ending on ``trade_date``."""
    window = set(business_window(trade_date, WINDOW, holidays))
    sides: dict[tuple[dt.date, str], set[Side]] = {}
    for day, symbol, side in fills:
        if day in window:
            sides.setdefault((day, symbol), set()).add(Side(side))
    count = sum(1 for v in sides.values() if len(v) == 2)
    today = {sym: frozenset(v) for (day, sym), v in sides.items() if day == trade_date}
    return DayTrades(trade_date, count, today)


def load_day_trades(engine: Engine, broker: str, trade_date: dt.date) -> DayTrades:
    """:func:`day_trades` over the fills of ``broker`` in our ledger."""
    since = dt.datetime.combine(trade_date - dt.timedelta(days=14), dt.time(), tzinfo=dt.UTC)
    with transaction(engine) as s:
        rows = s.execute(
            select(FillRow.filled_at, FillRow.symbol, FillRow.side).where(
                FillRow.broker == broker, FillRow.filled_at >= since
            )
        ).all()
    return day_trades(((t.astimezone(NEW_YORK).date(), sym, Side(side)) for t, sym, side in rows), trade_date)
