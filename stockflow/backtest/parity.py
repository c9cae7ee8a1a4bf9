"""Parity between the backtest and the live loop: the fills and equity a replay of the daily ``trade``
flow produced with the paper broker, compared with a backtest of the same strategy and settings.

A replay runs the flow once per session (``as_of`` = that session, auto mode). The paper broker fills
at the next session's open, so the backtest of the same window (signals act on the next bar, positions
left open at the end) must show the same fills (session, symbol, side, quantity) at the same prices up
to the broker's rounding (prices to 1/10000, stops to cents) and the same equity at every close.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine

from stockflow.backtest.result import BacktestResult

_NY = ZoneInfo("America/New_York")
_KEY = ["session", "symbol", "side"]


def paper_fills(engine: Engine) -> pl.DataFrame:
    """Every paper-broker fill as ``session, symbol, side, qty, price, commission`` (oldest first)."""
    from stockflow.brokers.paper import PaperBroker

    rows = [
        {
            "session": f.timestamp.astimezone(_NY).date(),
            "symbol": f.symbol,
            "side": f.side.value,
            "qty": float(f.qty),
            "price": float(f.price),
            "commission": float(f.commission),
        }
        for f in PaperBroker(engine).fills()
    ]
    schema = {"session": pl.Date, "symbol": pl.Utf8, "side": pl.Utf8, "qty": pl.Float64, "price": pl.Float64,
              "commission": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


@dataclass(frozen=True)
class ParityReport:
    """Differences between the live replay and the backtest (empty lists and small numbers = parity)."""

    live_fills: pl.DataFrame
    backtest_fills: pl.DataFrame
    only_live: list[tuple[object, ...]] = field(default_factory=list)
    only_backtest: list[tuple[object, ...]] = field(default_factory=list)
    qty_mismatch: list[tuple[object, ...]] = field(default_factory=list)
    max_price_diff: float = 0.0
    max_equity_rel_diff: float = 0.0
    equity_sessions: int = 0

    def ok(self, *, price_tol: float = 1e-3, equity_rel_tol: float = 1e-4) -> bool:
        """Same fills and quantities; prices and equity within the tolerances."""
        return (
            not self.only_live
            and not self.only_backtest
            and not self.qty_mismatch
            and self.max_price_diff <= price_tol
            and self.max_equity_rel_diff <= equity_rel_tol
        )

    def describe(self) -> str:
        """One paragraph for logs and assertion messages."""
        return (
            f"{self.live_fills.height} live fills vs {self.backtest_fills.height} backtest fills; "
            f"only live {self.only_live}; only backtest {self.only_backtest}; "
            f"qty mismatch {self.qty_mismatch}; "
            f"max price diff {self.max_price_diff:.6f}; max equity diff {self.max_equity_rel_diff:.2e} "
            f"over {self.equity_sessions} sessions"
        )


def compare_with_live(
    result: BacktestResult, live_fills: pl.DataFrame, live_equity: dict[dt.date, float]
) -> ParityReport:
    """Match fills on (session, symbol, side) and equity per session."""
    bt = result.fills.select(*_KEY, "qty", "price")
    lv = live_fills.select(*_KEY, "qty", "price")
    both = bt.join(lv, on=_KEY, how="full", suffix="_live", coalesce=True)
    only_live = both.filter(pl.col("qty").is_null()).select(_KEY).rows()
    only_bt = both.filter(pl.col("qty_live").is_null()).select(_KEY).rows()
    matched = both.filter(pl.col("qty").is_not_null() & pl.col("qty_live").is_not_null())
    qty_bad = matched.filter(pl.col("qty") != pl.col("qty_live")).select(*_KEY, "qty", "qty_live").rows()
    price_diff = (
        matched.select((pl.col("price") - pl.col("price_live")).abs().max()).item() if matched.height else 0
    )
    eq = {
        d: v
        for d, v in zip(result.equity["session"].to_list(), result.equity["equity"].to_list(), strict=True)
    }
    diffs = [abs(eq[d] - v) / v for d, v in live_equity.items() if d in eq and v]
    return ParityReport(
        live_fills=live_fills,
        backtest_fills=result.fills,
        only_live=only_live,
        only_backtest=only_bt,
        qty_mismatch=qty_bad,
        max_price_diff=float(price_diff or 0.0),
        max_equity_rel_diff=max(diffs) if diffs else 0.0,
        equity_sessions=len(diffs),
    )
