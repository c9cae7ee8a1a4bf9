"""Long polars frames <-> wide numpy panels (sessions x symbols), the engine's working layout.

Bars with a missing or non-positive price are treated as "no bar that session" (the engine neither
fills nor values at them) and counted, never silently used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from stockflow.domain.market import BAR_COLUMNS
from stockflow.errors import ConfigError, DataError

#: Columns of a signal frame (``size`` is optional and defaults to 1; ``entry`` is optional and defaults
#: to ``signal == 1``).
SIGNAL_COLUMNS: tuple[str, ...] = ("symbol", "session", "signal", "strength")


@dataclass(frozen=True)
class Panel:
    """OHLC of a universe as (T sessions x N symbols) float arrays; NaN where a symbol has no bar."""

    sessions: np.ndarray  # datetime64[D], shape (T,)
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    valid: np.ndarray  # bool (T, N): a usable bar exists
    invalid_bars: int = 0  # rows dropped because a price was missing, non-finite or <= 0

    @property
    def shape(self) -> tuple[int, int]:
        """(sessions, symbols)."""
        return self.close.shape  # type: ignore[return-value]


def _index(
    frame: pl.DataFrame, sessions: np.ndarray, symbols: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Row (session) and column (symbol) index of each row of ``frame``; -1 where not in the panel."""
    # Sessions: a lookup table over the day numbers of the panel's range (O(n), no search).
    day = frame.get_column("session").cast(pl.Int32).to_numpy()
    first, last = int(sessions[0].astype(np.int64)), int(sessions[-1].astype(np.int64))
    lut = np.full(last - first + 1, -1, dtype=np.int64)
    lut[sessions.astype(np.int64) - first] = np.arange(len(sessions))
    inside = (day >= first) & (day <= last)
    ti = np.full(len(day), -1, dtype=np.int64)
    ti[inside] = lut[day[inside] - first]
    # Symbols: an Enum over the panel's (sorted) symbols; its physical codes are the column numbers.
    codes = frame.get_column("symbol").cast(pl.Enum(list(symbols)), strict=False).to_physical()
    si = codes.fill_null(-1).cast(pl.Int64).to_numpy()
    return ti, si


def long_frame(panel: Panel, ti: np.ndarray, si: np.ndarray) -> pl.DataFrame:
    """``symbol, session`` columns of panel cells (ti, si), built without Python strings per row."""
    return pl.DataFrame(
        {
            "symbol": pl.Series(list(panel.symbols), dtype=pl.Utf8).gather(si),
            "session": pl.Series(panel.sessions[ti]).cast(pl.Date),
        }
    )


def build_panel(bars: pl.DataFrame, *, start: dt.date | None = None, end: dt.date | None = None) -> Panel:
    """The panel of ``bars`` (canonical bar frame) between ``start`` and ``end`` inclusive.

    Raises :class:`ConfigError` for an empty universe or a window without data.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(f"bar frame lacks columns {missing}", rule="schema")
    if bars.is_empty():
        raise ConfigError("symbols: the universe is empty (no bars given)")
    if start is not None and end is not None and start > end:
        raise ConfigError(f"start ({start}) is after end ({end})")
    lf = bars.lazy()
    if start is not None:
        lf = lf.filter(pl.col("session") >= start)
    if end is not None:
        lf = lf.filter(pl.col("session") <= end)
    window = lf.collect()
    if window.is_empty():
        raise ConfigError(f"start/end: no bars in the window {start or 'beginning'} .. {end or 'end'}")
    prices = ("open", "high", "low", "close")
    ok = pl.all_horizontal([pl.col(c).is_finite() & (pl.col(c) > 0) for c in prices]).fill_null(False)
    good = window.filter(ok)
    invalid = window.height - good.height
    if good.is_empty():
        raise ConfigError(f"start/end: no usable bars in the window {start or 'beginning'} .. {end or 'end'}")
    sessions = np.unique(good.get_column("session").to_numpy().astype("datetime64[D]"))
    symbols = tuple(sorted(good.get_column("symbol").unique().to_list()))
    ti, si = _index(good, sessions, symbols)
    shape = (len(sessions), len(symbols))
    arrays = {}
    for c in prices:
        a = np.full(shape, np.nan)
        a[ti, si] = good.get_column(c).to_numpy()
        arrays[c] = a
    valid = ~np.isnan(arrays["close"])
    # Defective rows where high/low do not bracket open/close: widen so stops see the real range.
    hi = np.fmax(arrays["high"], np.fmax(arrays["open"], arrays["close"]))
    lo = np.fmin(arrays["low"], np.fmin(arrays["open"], arrays["close"]))
    return Panel(
        sessions=sessions,
        symbols=symbols,
        open=arrays["open"],
        high=hi,
        low=lo,
        close=arrays["close"],
        valid=valid,
        invalid_bars=invalid,
    )


@dataclass(frozen=True)
class SignalPanel:
    """Signals aligned to a panel: target (-1/0/1, or -2 = no opinion), whether a new position may be
    opened (``entry``), strength and size factor."""

    target: np.ndarray  # int8 (T, N)
    strength: np.ndarray  # float (T, N)
    size: np.ndarray  # float (T, N), fraction of the normal position size
    entry: np.ndarray  # bool (T, N): a long target that may also open a position (not only keep one)


NO_OPINION = -2


def align_signals(signals: pl.DataFrame, panel: Panel) -> SignalPanel:
    """Scatter a long signal frame onto ``panel``; rows outside the panel are ignored."""
    return align_to_grid(signals, panel.sessions, panel.symbols)


def align_to_grid(signals: pl.DataFrame, sessions: np.ndarray, symbols: tuple[str, ...]) -> SignalPanel:
    """:func:`align_signals` onto the panel of these sessions and symbols (aligning reads nothing else of
    it: a worker can align next to the signals without the panel's prices)."""
    missing = [c for c in SIGNAL_COLUMNS if c not in signals.columns]
    if missing:
        raise DataError(f"signal frame lacks columns {missing}", rule="signal_schema")
    shape = (len(sessions), len(symbols))
    target = np.full(shape, NO_OPINION, dtype=np.int8)
    strength = np.zeros(shape)
    size = np.ones(shape)
    sig = signals.filter(pl.col("signal").is_not_null())
    if sig.is_empty():
        return SignalPanel(target, strength, size, target == 1)
    values = sig.get_column("signal").to_numpy()
    bad = (values < -1) | (values > 1) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"signal must be -1, 0 or 1, got {values[row]!r}",
            symbol=str(sig.get_column("symbol")[row]),
            row=row,
            rule="signal_range",
        )
    ti, si = _index(sig, sessions, symbols)
    keep = (ti >= 0) & (si >= 0)
    ti, si = ti[keep], si[keep]
    target[ti, si] = values[keep].astype(np.int8)
    strength[ti, si] = np.nan_to_num(sig.get_column("strength").cast(pl.Float64).to_numpy()[keep], nan=0.0)
    if "size" in sig.columns:
        sz = sig.get_column("size").cast(pl.Float64).fill_null(1.0).to_numpy()[keep]
        size[ti, si] = np.clip(np.nan_to_num(sz, nan=1.0), 0.0, 1.0)
    entry = target == 1
    if "entry" in sig.columns:
        allowed = np.zeros(shape, dtype=bool)
        allowed[ti, si] = sig.get_column("entry").cast(pl.Boolean).fill_null(True).to_numpy()[keep]
        entry &= allowed
    return SignalPanel(target, strength, size, entry)


def forward_fill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs down each column (leading NaNs stay)."""
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = a[idx, np.arange(a.shape[1])[None, :]]
    return out  # type: ignore[no-any-return]
