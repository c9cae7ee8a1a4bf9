"""TA-Lib indicators of one symbol, on contiguous numpy arrays.

Plain numpy in, plain numpy out: the caller slices one symbol's rows out of a polars frame once and
calls :func:`symbol_features` on the views (polars ``map_batches(...).over()`` around TA-Lib measured
15x slower). Every output is scale-free so that rows pool across symbols.
"""

from __future__ import annotations

import numpy as np
import talib

from stockflow.features.spec import BASE_FEATURES

_COL = {name: i for i, name in enumerate(BASE_FEATURES)}


def _ratio(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 0/0 and x/0 become NaN, not inf: a NaN feature marks the row unusable instead of poisoning models.
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(num, den, out=out)
    out[np.isinf(out)] = np.nan
    return out


def symbol_features(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Feature matrix (len(BASE_FEATURES) x rows, one contiguous row per feature) of one symbol's bars
    in session order, written into ``out`` when given (e.g. a column slice of a panel-wide array).

    Values inside an indicator's lookback are NaN. The inputs must be float64, finite and positive
    (prices); the caller checks that and skips the symbol otherwise.
    """
    del open_  # not used by the current set; kept in the signature so the caller's slices stay uniform
    n = close.shape[0]
    if out is None:
        out = np.empty((len(BASE_FEATURES), n), dtype=np.float64)

    def row(name: str) -> np.ndarray:
        return out[_COL[name]]

    # Arithmetic writes straight into the output row (out=...): no temporaries beyond TA-Lib's own result.
    for k in (1, 5, 10, 20, 60):
        np.subtract(talib.ROCR(close, timeperiod=k), 1.0, out=row(f"ret_{k}"))
    np.divide(talib.RSI(close, timeperiod=14), 100.0, out=row("rsi_14"))
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    np.divide(macd, close, out=row("macd"))
    np.divide(signal, close, out=row("macd_signal"))
    np.divide(hist, close, out=row("macd_hist"))
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
    band = upper - lower
    _ratio(close - lower, band, row("bb_pctb"))
    _ratio(band, middle, row("bb_width"))
    np.divide(talib.ATR(high, low, close, timeperiod=14), close, out=row("atr_pct"))
    # Finite-memory averages of the true range: Wilder's ATR(20) converges too slowly for MIN_HISTORY.
    trange = talib.TRANGE(high, low, close)
    np.subtract(
        _ratio(talib.SMA(trange, timeperiod=5), talib.SMA(trange, timeperiod=20), row("atr_trend")),
        1.0,
        out=row("atr_trend"),
    )
    np.divide(talib.ADX(high, low, close, timeperiod=14), 100.0, out=row("adx_14"))
    dmi = row("dmi_diff")
    np.subtract(
        talib.PLUS_DI(high, low, close, timeperiod=14),
        talib.MINUS_DI(high, low, close, timeperiod=14),
        out=dmi,
    )
    np.divide(dmi, 100.0, out=dmi)
    obv = talib.OBV(close, volume)
    obv_diff = np.empty(n)
    obv_diff[:10] = np.nan
    np.subtract(obv[10:], obv[:-10], out=obv_diff[10:])
    _ratio(obv_diff, talib.SUM(volume, timeperiod=10), row("obv_chg_10"))
    sma50 = talib.SMA(close, timeperiod=50)
    sma200 = talib.SMA(close, timeperiod=200)
    for name, den in (
        ("sma_ratio_20", talib.SMA(close, timeperiod=20)),
        ("sma_ratio_50", sma50),
        ("sma_ratio_200", sma200),
        ("ema_ratio_12", talib.EMA(close, timeperiod=12)),
        ("ema_ratio_26", talib.EMA(close, timeperiod=26)),
    ):
        r = row(name)
        np.divide(close, den, out=r)
        np.subtract(r, 1.0, out=r)
    cross = row("sma_cross_50_200")
    np.divide(sma50, sma200, out=cross)
    np.subtract(cross, 1.0, out=cross)
    logret = np.empty(n)
    logret[0] = np.nan
    np.log(close[1:] / close[:-1], out=logret[1:])
    row("vol_20")[:] = talib.STDDEV(logret, timeperiod=20, nbdev=1.0)
    row("vol_60")[:] = talib.STDDEV(logret, timeperiod=60, nbdev=1.0)
    logvol = np.log1p(volume)
    _ratio(
        logvol - talib.SMA(logvol, timeperiod=20),
        talib.STDDEV(logvol, timeperiod=20, nbdev=1.0),
        row("volume_z_20"),
    )
    rng = row("range_pct")
    np.subtract(high, low, out=rng)
    np.divide(rng, close, out=rng)
    return out


def forward_return(close: np.ndarray, horizon: int, out: np.ndarray | None = None) -> np.ndarray:
    """close[t+h] / close[t] - 1, NaN on the last ``horizon`` rows (the label never uses bar t's data
    beyond its close, the price the position would be entered at)."""
    if out is None:
        out = np.empty(close.shape[0])
    out[-horizon:] = np.nan
    if close.shape[0] > horizon:
        head = out[:-horizon]
        np.divide(close[horizon:], close[:-horizon], out=head)
        np.subtract(head, 1.0, out=head)
    return out


def past_return(close: np.ndarray, k: int, out: np.ndarray | None = None) -> np.ndarray:
    """close[t] / close[t-k] - 1, NaN on the first ``k`` rows (only past prices)."""
    if out is None:
        out = np.empty(close.shape[0])
    out[: min(k, close.shape[0])] = np.nan
    if close.shape[0] > k:
        tail = out[k:]
        np.divide(close[k:], close[:-k], out=tail)
        np.subtract(tail, 1.0, out=tail)
    return out
