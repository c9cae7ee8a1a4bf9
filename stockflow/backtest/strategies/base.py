"""The strategy interface and the per-symbol machinery shared by the rule-based strategies.

A strategy turns bars into signals: a frame ``symbol, session, signal, strength`` (optionally
``size`` and ``entry``) where ``signal`` is the position the strategy wants after that session's close
(1 long, 0 flat, -1 short/bearish; the engine is long-only and treats -1 as flat), ``strength`` in
[0, 1] ranks competing entries, ``size`` in [0, 1] scales the normal position size, and ``entry`` says
whether a long signal may open a new position or only keep one (a hold-until strategy such as RSI
reversion holds from RSI < 30 until RSI >= 50, but after a stop-out re-enters only below 30 again).
Rows where the strategy has no opinion (indicator warm-up) are absent. A signal computed on session t
uses data up to t only; the engine executes it at the next open.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import polars as pl

from stockflow.domain.market import BAR_COLUMNS, BAR_SCHEMA
from stockflow.errors import ConfigError, DataError

#: Schema of a signal frame.
SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "session": pl.Date(),
    "signal": pl.Int8(),
    "strength": pl.Float64(),
    "entry": pl.Boolean(),
}


@runtime_checkable
class Strategy(Protocol):
    """What the engine, the ensemble and the reports need from a strategy."""

    @property
    def name(self) -> str:
        """Canonical name (``sma_crossover``, ``ml`` ...)."""
        ...

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Signals of ``bars`` (canonical bar frame) as described in the module docstring."""
        ...

    def params(self) -> dict[str, Any]:
        """The strategy's parameters (for reports and the run record)."""
        ...


def empty_signals() -> pl.DataFrame:
    """A signal frame without rows."""
    return pl.DataFrame(schema=SIGNAL_SCHEMA)


def usable_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """Canonical columns, rows with finite positive prices, sorted by symbol and session."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bar frame lacks columns {missing}", rule="schema")
    prices = ("open", "high", "low", "close")
    ok = pl.all_horizontal([pl.col(c).is_finite() & (pl.col(c) > 0) for c in prices]).fill_null(False)
    return (
        bars.select([pl.col(c).cast(t) for c, t in BAR_SCHEMA.items()]).filter(ok).sort(["symbol", "session"])
    )


def symbol_blocks(bars: pl.DataFrame) -> list[tuple[str, int, int]]:
    """(symbol, start, stop) row ranges of a frame sorted by symbol."""
    counts = bars.group_by("symbol", maintain_order=True).len()
    out: list[tuple[str, int, int]] = []
    pos = 0
    for sym, n in counts.iter_rows():
        out.append((sym, pos, pos + n))
        pos += n
    return out


def hold_state(enter: np.ndarray, leave: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """1 from a bar where ``enter`` holds until a bar where ``leave`` holds (exclusive of re-entry),
    0 otherwise; NaN where ``valid`` is false (indicator undefined). ``enter`` wins when both hold.
    """
    n = len(enter)
    event = np.full(n, np.nan)
    event[leave & valid] = 0.0
    event[enter & valid] = 1.0
    idx = np.where(np.isnan(event), -1, np.arange(n))
    np.maximum.accumulate(idx, out=idx)
    state = np.where(idx >= 0, event[np.maximum(idx, 0)], 0.0)
    return np.where(valid, state, np.nan)


def require(cond: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``cond``."""
    if not cond:
        raise ConfigError(message)


def require_int(owner: str, name: str, value: object, minimum: int) -> None:
    """A whole-number parameter at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class IndicatorStrategy(ABC):
    """A strategy computed symbol by symbol from numpy slices (TA-Lib is fast on contiguous arrays)."""

    name: ClassVar[str] = "indicator"

    @abstractmethod
    def compute(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Signal (float: -1/0/1, NaN = no opinion), strength and optionally the entry condition (bool)
        of one symbol's bars; without it every long signal may open a position."""

    def params(self) -> dict[str, Any]:
        """The dataclass fields and values."""
        return dataclasses.asdict(self)

    def signals(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Signals of every symbol in ``bars`` (see the module docstring)."""
        b = usable_bars(bars)
        if b.is_empty():
            return empty_signals()
        n = b.height
        sig = np.full(n, np.nan)
        strength = np.zeros(n)
        entry = np.ones(n, dtype=bool)
        o, h, lo, c = (b.get_column(k).to_numpy() for k in ("open", "high", "low", "close"))
        for _sym, a, z in symbol_blocks(b):
            parts = self.compute(o[a:z], h[a:z], lo[a:z], c[a:z])
            sig[a:z] = parts[0]
            strength[a:z] = parts[1]
            if len(parts) > 2:
                entry[a:z] = parts[2]
        keep = ~np.isnan(sig)
        out = b.select("symbol", "session").with_columns(
            pl.Series("signal", np.nan_to_num(sig), dtype=pl.Int8),
            pl.Series("strength", np.clip(np.nan_to_num(strength), 0.0, 1.0), dtype=pl.Float64),
            pl.Series("entry", entry & (np.nan_to_num(sig) == 1), dtype=pl.Boolean),
        )
        return out.filter(pl.Series(keep))
