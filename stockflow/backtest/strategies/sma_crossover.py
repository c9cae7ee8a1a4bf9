"""SMA crossover: long while the fast simple moving average is above the slow one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import talib

from stockflow.backtest.strategies.base import IndicatorStrategy, require, require_int


@dataclass(frozen=True)
class SmaCrossover(IndicatorStrategy):
    """Signal 1 while SMA(fast) > SMA(slow), -1 while below (bearish; flat for the long-only engine).

    Strength grows with the gap between the averages: ``min(1, |fast/slow - 1| / full_strength_gap)``.
    """

    name: ClassVar[str] = "sma_crossover"
    fast: int = 20
    slow: int = 50
    full_strength_gap: float = 0.05

    def __post_init__(self) -> None:
        require_int(self.name, "fast", self.fast, 1)
        require_int(self.name, "slow", self.slow, 2)
        require(
            self.fast < self.slow,
            f"{self.name}.fast ({self.fast}) must be smaller than {self.name}.slow ({self.slow})",
        )
        require(
            self.full_strength_gap > 0,
            f"{self.name}.full_strength_gap must be > 0, got {self.full_strength_gap}",
        )

    def compute(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        fast = talib.SMA(close, self.fast)
        slow = talib.SMA(close, self.slow)
        gap = fast / slow - 1.0
        sig = np.where(np.isnan(gap), np.nan, np.where(gap > 0, 1.0, -1.0))
        return sig, np.minimum(np.abs(np.nan_to_num(gap)) / self.full_strength_gap, 1.0)
