"""MACD trend: long while the MACD line is above its signal line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import talib

from stockflow.backtest.strategies.base import IndicatorStrategy, require, require_int


@dataclass(frozen=True)
class MacdTrend(IndicatorStrategy):
    """Signal 1 while MACD(fast, slow) > its EMA(signal) (and, with ``require_positive``, MACD > 0),
    else -1. Strength is ``min(1, |histogram| / (full_strength_pct% of close))``.
    """

    name: ClassVar[str] = "macd_trend"
    fast: int = 12
    slow: int = 26
    signal: int = 9
    require_positive: bool = False
    full_strength_pct: float = 1.0

    def __post_init__(self) -> None:
        require_int(self.name, "fast", self.fast, 2)
        require_int(self.name, "slow", self.slow, 3)
        require_int(self.name, "signal", self.signal, 1)
        require(
            self.fast < self.slow,
            f"{self.name}.fast ({self.fast}) must be smaller than {self.name}.slow ({self.slow})",
        )
        require(
            self.full_strength_pct > 0,
            f"{self.name}.full_strength_pct must be > 0, got {self.full_strength_pct}",
        )

    def compute(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        macd, _signal_line, hist = talib.MACD(close, self.fast, self.slow, self.signal)
        bull = hist > 0
        if self.require_positive:
            bull &= macd > 0
        sig = np.where(np.isnan(hist), np.nan, np.where(bull, 1.0, -1.0))
        strength = np.abs(np.nan_to_num(hist)) / (close * self.full_strength_pct / 100.0)
        return sig, np.minimum(strength, 1.0)
