"""Market data types: the canonical bar frame and symbol rules."""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from stockflow.errors import DataError

#: Columns and dtypes of the canonical daily bar frame used everywhere downstream of ingest.
BAR_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.Utf8(),
    "session": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}
BAR_COLUMNS: Final[tuple[str, ...]] = tuple(BAR_SCHEMA)
PRICE_COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close")

# US equity tickers: letters, optionally a class suffix after a dot (BRK.B) or a caret for indices.
_SYMBOL_RE = re.compile(r"^\^?[A-Z][A-Z0-9]{0,9}([.\-][A-Z0-9]{1,3})?$")


def normalize_symbol(raw: str) -> str:
    """Return the canonical upper-case symbol or raise :class:`DataError` naming the bad value."""
    sym = raw.strip().upper()
    if not _SYMBOL_RE.match(sym):
        raise DataError(f"invalid symbol {raw!r}", symbol=raw, rule="symbol_format")
    return sym


def empty_bars() -> pl.DataFrame:
    """An empty frame with the canonical bar schema."""
    return pl.DataFrame(schema=BAR_SCHEMA)


def conform_bars(df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the canonical columns, in canonical order, sorted by symbol and session."""
    missing = [c for c in BAR_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"bar frame lacks columns {missing}", rule="schema")
    return df.select([pl.col(c).cast(t) for c, t in BAR_SCHEMA.items()]).sort(["symbol", "session"])
