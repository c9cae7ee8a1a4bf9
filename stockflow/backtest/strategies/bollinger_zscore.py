"""Bollinger / z-score mean reversion: buy a close far below its moving average, sell on reversion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import talib

from stockflow.backtest.strategies.base import IndicatorStrategy, hold_state, require, require_int


@dataclass(frozen=True)
class BollingerZScore(IndicatorStrategy):
    """z = (close - SMA(window)) / STDDEV(window). Long from z < -``entry_z`` until z >= -``exit_z``;
    bearish from z > ``entry_z`` until z <= ``exit_z``. Strength ``min(1, |z| / (2 * entry_z))``.
    (With entry_z = 2 the entry is a close below the lower Bollinger band.) A new position opens only
    on z < -``entry_z``.
    """

    name: ClassVar[str] = "bollinger_zscore"
    window: int = 20
    entry_z: float = 2.0
    exit_z: float = 0.0

    def __post_init__(self) -> None:
        require_int(self.name, "window", self.window, 2)
        require(self.entry_z > 0, f"{self.name}.entry_z must be > 0, got {self.entry_z}")
        require(
            0 <= self.exit_z < self.entry_z,
            f"{self.name}.exit_z must be in [0, entry_z={self.entry_z}), got {self.exit_z}",
        )

    def compute(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        mean = talib.SMA(close, self.window)
        std = talib.STDDEV(close, self.window, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (close - mean) / std
        valid = np.isfinite(z)
        zz = np.where(valid, z, 0.0)
        long_ = hold_state(zz < -self.entry_z, zz >= -self.exit_z, valid)
        short = hold_state(zz > self.entry_z, zz <= self.exit_z, valid)
        return long_ - short, np.minimum(np.abs(zz) / (2 * self.entry_z), 1.0), zz < -self.entry_z
