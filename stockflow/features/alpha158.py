"""An Alpha158-style feature set ("a158-v1"): Qlib's kbar and rolling price/volume operators, in numpy.

Follows the expressions of Qlib's ``Alpha158`` handler (qlib/contrib/data/loader.py): 9 kbar features
and 17 rolling operators over 5/10/20/30/60 sessions (94 columns). Every feature has finite memory (at
most 61 bars: a 60-session window over one-bar differences), so the warm-up is exact and a row never
depends on how much history was loaded. Differences from Qlib, each for robustness on raw daily data:

- a correlation of a constant window (CORR) is 0, not NaN (a stale volume would void the row);
- VMA/VSTD divide by the session's volume and are undefined (the row unusable) on a zero-volume bar,
  instead of dividing by 1e-12;
- no 1e-12 in the other denominators: a zero high-low range makes KMID2/KUP2/KLOW2/KSFT2/RSV undefined.

Computed per symbol on contiguous arrays with ``sliding_window_view`` (no polars ``map_batches``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

VERSION: Final[str] = "a158-v1"
WINDOWS: Final[tuple[int, ...]] = (5, 10, 20, 30, 60)

KBAR: Final[dict[str, str]] = {
    "KMID": "(close-open)/open",
    "KLEN": "(high-low)/open",
    "KMID2": "(close-open)/(high-low)",
    "KUP": "(high-max(open,close))/open",
    "KUP2": "(high-max(open,close))/(high-low)",
    "KLOW": "(min(open,close)-low)/open",
    "KLOW2": "(min(open,close)-low)/(high-low)",
    "KSFT": "(2close-high-low)/open",
    "KSFT2": "(2close-high-low)/(high-low)",
}
ROLLING: Final[dict[str, str]] = {
    "ROC": "Ref(close,d)/close",
    "MA": "Mean(close,d)/close",
    "STD": "Std(close,d)/close",
    "BETA": "Slope(close,d)/close",
    "RSQR": "Rsquare(close,d)",
    "RESI": "Resi(close,d)/close",
    "MAX": "Max(high,d)/close",
    "MIN": "Min(low,d)/close",
    "QTLU": "Quantile(close,d,0.8)/close",
    "QTLD": "Quantile(close,d,0.2)/close",
    "RANK": "Rank(close,d)",
    "RSV": "(close-Min(low,d))/(Max(high,d)-Min(low,d))",
    "CORR": "Corr(close,log(volume+1),d); 0 for a constant window",
    "CNTP": "Mean(close>Ref(close,1),d)",
    "SUMP": "Sum(max(close-Ref(close,1),0),d)/Sum(abs(close-Ref(close,1)),d)",
    "VMA": "Mean(volume,d)/volume",
    "VSTD": "Std(volume,d)/volume",
}

SPEC: Final[dict[str, str]] = {
    **KBAR,
    **{f"{op}{d}": expr.replace(",d)", f",{d})") for op, expr in ROLLING.items() for d in WINDOWS},
}
BASE: Final[tuple[str, ...]] = tuple(SPEC)
#: Bars (including the row) a row needs: a 60-session window of one-bar differences.
MIN_HISTORY: Final[int] = max(WINDOWS) + 1
_COL = {name: i for i, name in enumerate(BASE)}


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den)
    out[~np.isfinite(out)] = np.nan
    return out


def _rolled(x: np.ndarray, w: int, fn: object) -> np.ndarray:
    """``fn(windows)`` (windows of shape (n-w+1, w)) aligned to the window's last row, NaN before."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= w:
        out[w - 1 :] = fn(sliding_window_view(x, w))  # type: ignore[operator]
    return out


def alpha158_features(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Feature matrix (len(BASE) x rows) of one symbol's bars in session order (NaN where undefined)."""
    n = close.shape[0]
    if out is None:
        out = np.empty((len(BASE), n), dtype=np.float64)

    def put(name: str, values: np.ndarray) -> None:
        out[_COL[name]] = values

    o, h, lo, c, v = open_, high, low, close, volume
    rng = h - lo
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    put("KMID", (c - o) / o)
    put("KLEN", rng / o)
    put("KMID2", _div(c - o, rng))
    put("KUP", (h - top) / o)
    put("KUP2", _div(h - top, rng))
    put("KLOW", (bottom - lo) / o)
    put("KLOW2", _div(bottom - lo, rng))
    put("KSFT", (2 * c - h - lo) / o)
    put("KSFT2", _div(2 * c - h - lo, rng))

    diff = np.full(n, np.nan)
    diff[1:] = c[1:] - c[:-1]
    up = np.where(np.isnan(diff), np.nan, (diff > 0).astype(np.float64))
    gain = np.where(np.isnan(diff), np.nan, np.maximum(diff, 0.0))
    absd = np.abs(diff)
    logv = np.log1p(v)
    vol_den = np.where(v > 0, v, np.nan)
    for d in WINDOWS:
        ref = np.full(n, np.nan)
        ref[d:] = c[:-d]
        put(f"ROC{d}", ref / c)
        put(f"MA{d}", _rolled(c, d, lambda w: w.mean(axis=1)) / c)
        put(f"STD{d}", _rolled(c, d, lambda w: w.std(axis=1, ddof=1)) / c)
        t = np.arange(d, dtype=np.float64) - (d - 1) / 2.0
        stt = float(t @ t)
        slope = _rolled(c, d, lambda w, t=t, stt=stt: (w - w.mean(axis=1, keepdims=True)) @ t / stt)
        scc = _rolled(c, d, lambda w: ((w - w.mean(axis=1, keepdims=True)) ** 2).sum(axis=1))
        mean = _rolled(c, d, lambda w: w.mean(axis=1))
        put(f"BETA{d}", slope / c)
        put(f"RSQR{d}", np.where(scc > 0, _div(slope**2 * stt, scc), 0.0))
        put(f"RESI{d}", (c - (mean + slope * (d - 1) / 2.0)) / c)
        hmax = _rolled(h, d, lambda w: w.max(axis=1))
        lmin = _rolled(lo, d, lambda w: w.min(axis=1))
        put(f"MAX{d}", hmax / c)
        put(f"MIN{d}", lmin / c)
        srt = _rolled_sorted(c, d)
        put(f"QTLU{d}", _quantile(srt, 0.8) / c)
        put(f"QTLD{d}", _quantile(srt, 0.2) / c)
        put(f"RANK{d}", _rolled(c, d, _last_rank))
        put(f"RSV{d}", _div(c - lmin, hmax - lmin))
        put(f"CORR{d}", _rolled_corr(c, logv, d))
        put(f"CNTP{d}", _rolled(up, d, lambda w: w.mean(axis=1)))
        put(f"SUMP{d}", np.where(
            _rolled(absd, d, lambda w: w.sum(axis=1)) > 0,
            _div(_rolled(gain, d, lambda w: w.sum(axis=1)), _rolled(absd, d, lambda w: w.sum(axis=1))),
            0.5,
        ))  # fmt: skip
        put(f"VMA{d}", _rolled(v, d, lambda w: w.mean(axis=1)) / vol_den)
        put(f"VSTD{d}", _rolled(v, d, lambda w: w.std(axis=1, ddof=1)) / vol_den)
    return out


def _rolled_sorted(x: np.ndarray, w: int) -> np.ndarray:
    n = x.shape[0]
    out = np.full((n, w), np.nan)
    if n >= w:
        out[w - 1 :] = np.sort(sliding_window_view(x, w), axis=1)
    return out


def _quantile(sorted_rows: np.ndarray, q: float) -> np.ndarray:
    """Linear-interpolation quantile (numpy's and pandas' default) of rows already sorted."""
    w = sorted_rows.shape[1]
    pos = q * (w - 1)
    lo, frac = int(np.floor(pos)), pos - np.floor(pos)
    hi = min(lo + 1, w - 1)
    return np.asarray(sorted_rows[:, lo] * (1 - frac) + sorted_rows[:, hi] * frac)


def _last_rank(win: np.ndarray) -> np.ndarray:
    """Percentile rank (pandas ``rank(pct=True)``, ties averaged) of each window's last value."""
    last = win[:, -1:]
    less = (win < last).sum(axis=1)
    equal = (win == last).sum(axis=1)
    return np.asarray((less + (equal + 1) / 2.0) / win.shape[1])


def _rolled_corr(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n < w:
        return out
    xw = sliding_window_view(x, w)
    yw = sliding_window_view(y, w)
    xd = xw - xw.mean(axis=1, keepdims=True)
    yd = yw - yw.mean(axis=1, keepdims=True)
    den = np.sqrt((xd**2).sum(axis=1) * (yd**2).sum(axis=1))
    num = (xd * yd).sum(axis=1)
    # Relative threshold: float noise in a constant window must not become a +-1 correlation.
    tiny = den <= 1e-12 * (np.abs(xw).max(axis=1) * np.abs(yw).max(axis=1) * w + 1e-300)
    out[w - 1 :] = np.where(tiny, 0.0, np.clip(_div(num, np.where(tiny, 1.0, den)), -1.0, 1.0))
    return out
