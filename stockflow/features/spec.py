"""What the feature set is: names, parameters, version and the history it needs.

The version is tied to the code: :data:`FEATURE_SPEC` lists every indicator with its parameters, and a
test pins its fingerprint to :data:`FEATURE_SET_VERSION`, so changing a feature without bumping the
version fails the suite. Models record the version they were trained on and refuse other versions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

#: Version of the feature set this code computes. Bump it whenever FEATURE_SPEC or the code changes.
FEATURE_SET_VERSION: Final[str] = "ta-v1"

#: Per-symbol features (scale-free: ratios, returns, bounded oscillators), with their TA-Lib parameters.
FEATURE_SPEC: Final[dict[str, str]] = {
    "ret_1": "ROCR(close,1)-1",
    "ret_5": "ROCR(close,5)-1",
    "ret_10": "ROCR(close,10)-1",
    "ret_20": "ROCR(close,20)-1",
    "ret_60": "ROCR(close,60)-1",
    "rsi_14": "RSI(close,14)/100",
    "macd": "MACD(close,12,26,9).macd/close",
    "macd_signal": "MACD(close,12,26,9).signal/close",
    "macd_hist": "MACD(close,12,26,9).hist/close",
    "bb_pctb": "(close-BBANDS.lower)/(BBANDS.upper-BBANDS.lower), BBANDS(close,20,2,2)",
    "bb_width": "(BBANDS.upper-BBANDS.lower)/BBANDS.middle, BBANDS(close,20,2,2)",
    "atr_pct": "ATR(high,low,close,14)/close",
    "atr_trend": "SMA(TRANGE,5)/SMA(TRANGE,20)-1",
    "adx_14": "ADX(high,low,close,14)/100",
    "dmi_diff": "(PLUS_DI(14)-MINUS_DI(14))/100",
    "obv_chg_10": "(OBV[t]-OBV[t-10])/SUM(volume,10)",
    "sma_ratio_20": "close/SMA(close,20)-1",
    "sma_ratio_50": "close/SMA(close,50)-1",
    "sma_ratio_200": "close/SMA(close,200)-1",
    "sma_cross_50_200": "SMA(close,50)/SMA(close,200)-1",
    "ema_ratio_12": "close/EMA(close,12)-1",
    "ema_ratio_26": "close/EMA(close,26)-1",
    "vol_20": "STDDEV(log return,20)",
    "vol_60": "STDDEV(log return,60)",
    "volume_z_20": "(log1p(volume)-SMA(log1p(volume),20))/STDDEV(log1p(volume),20)",
    "range_pct": "(high-low)/close",
}

#: Per-symbol features that get a cross-sectional rank per session. Only finite-memory features are
#: ranked, so that a rank never depends on how much history was loaded.
RANKED_FEATURES: Final[tuple[str, ...]] = ("ret_5", "ret_20", "sma_ratio_50", "vol_20", "volume_z_20")

#: Name of the cross-sectional rank column of a ranked feature.
RANK_PREFIX: Final[str] = "cs_rank_"

BASE_FEATURES: Final[tuple[str, ...]] = tuple(FEATURE_SPEC)
RANK_FEATURES: Final[tuple[str, ...]] = tuple(f"{RANK_PREFIX}{f}" for f in RANKED_FEATURES)

#: Every feature column of :func:`stockflow.features.build_features`, in output order.
FEATURE_COLUMNS: Final[tuple[str, ...]] = BASE_FEATURES + RANK_FEATURES

#: Label columns (never features): forward return over the label horizon and its direction, the
#: next-session return (what a daily-rebalanced book earns), and the cross-sectional labels: excess
#: return over the universe's mean, its percentile rank, and outperformance (1/0).
LABEL_COLUMNS: Final[tuple[str, ...]] = ("fwd_ret", "y_up", "fwd_ret_1", "fwd_excess", "fwd_rank", "y_out")

#: Bars of history (including the row itself) a row needs before its features are trusted. The longest
#: finite lookback is SMA(200) (200 bars); the recursive indicators (EMA 26, Wilder's RSI/ATR/ADX 14)
#: converge geometrically, and the warm-up stability test (tests/features/test_leakage.py) measures
#: that the last row agrees within STABILITY_ATOL across history lengths from 230 bars on. 260 leaves
#: a margin and equals the default of ``settings.features.min_history``.
MIN_HISTORY: Final[int] = 260

#: Absolute tolerance of the warm-up stability check (features are O(1) ratios).
STABILITY_ATOL: Final[float] = 1e-6


def spec_fingerprint() -> str:
    """A short hash of the feature definitions, pinned per version in the tests."""
    payload = json.dumps(
        {"spec": FEATURE_SPEC, "ranked": RANKED_FEATURES, "min_history": MIN_HISTORY}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
