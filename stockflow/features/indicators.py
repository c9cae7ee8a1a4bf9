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


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 and x/0 become NaN, not inf: a NaN feature marks the row unusable instead of poisoning models.
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out


def symbol_features(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Feature matrix (rows x len(BASE_FEATURES)) of one symbol's bars in session order.

    Values inside an indicator's lookback are NaN. The inputs must be float64, finite and positive
    (prices); the caller checks that and skips the symbol otherwise.
    """
    del open_  # not used by the current set; kept in the signature so the caller's slices stay uniform
    n = close.shape[0]
    out = np.empty((n, len(BASE_FEATURES)), dtype=np.float64)

    def put(name: str, values: np.ndarray) -> None:
        out[:, _COL[name]] = values

    for k in (1, 5, 10, 20, 60):
        put(f"ret_{k}", talib.ROCR(close, timeperiod=k) - 1.0)
    put("rsi_14", talib.RSI(close, timeperiod=14) / 100.0)
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    put("macd", macd / close)
    put("macd_signal", signal / close)
    put("macd_hist", hist / close)
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
    put("bb_pctb", _ratio(close - lower, upper - lower))
    put("bb_width", _ratio(upper - lower, middle))
    put("atr_pct", talib.ATR(high, low, close, timeperiod=14) / close)
    # Finite-memory averages of the true range: Wilder's ATR(20) converges too slowly for MIN_HISTORY.
    trange = talib.TRANGE(high, low, close)
    put("atr_trend", _ratio(talib.SMA(trange, timeperiod=5), talib.SMA(trange, timeperiod=20)) - 1.0)
    put("adx_14", talib.ADX(high, low, close, timeperiod=14) / 100.0)
    put(
        "dmi_diff",
        (talib.PLUS_DI(high, low, close, timeperiod=14) - talib.MINUS_DI(high, low, close, timeperiod=14))
        / 100.0,
    )
    obv = talib.OBV(close, volume)
    obv_diff = np.full(n, np.nan)
    obv_diff[10:] = obv[10:] - obv[:-10]
    put("obv_chg_10", _ratio(obv_diff, talib.SUM(volume, timeperiod=10)))
    sma50 = talib.SMA(close, timeperiod=50)
    sma200 = talib.SMA(close, timeperiod=200)
    put("sma_ratio_20", close / talib.SMA(close, timeperiod=20) - 1.0)
    put("sma_ratio_50", close / sma50 - 1.0)
    put("sma_ratio_200", close / sma200 - 1.0)
    put("sma_cross_50_200", sma50 / sma200 - 1.0)
    put("ema_ratio_12", close / talib.EMA(close, timeperiod=12) - 1.0)
    put("ema_ratio_26", close / talib.EMA(close, timeperiod=26) - 1.0)
    logret = np.full(n, np.nan)
    logret[1:] = np.log(close[1:] / close[:-1])
    put("vol_20", talib.STDDEV(logret, timeperiod=20, nbdev=1.0))
    put("vol_60", talib.STDDEV(logret, timeperiod=60, nbdev=1.0))
    logvol = np.log1p(volume)
    put(
        "volume_z_20",
        _ratio(logvol - talib.SMA(logvol, timeperiod=20), talib.STDDEV(logvol, timeperiod=20, nbdev=1.0)),
    )
    put("range_pct", (high - low) / close)
    return out


def forward_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """close[t+h] / close[t] - 1, NaN on the last ``horizon`` rows (the label never uses bar t's data
    beyond its close, the price the position would be entered at)."""
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] > horizon:
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out
