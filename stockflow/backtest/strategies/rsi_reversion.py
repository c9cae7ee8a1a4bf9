"""RSI mean reversion: buy oversold, hold until the RSI has recovered to the exit level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import talib

from stockflow.backtest.strategies.base import IndicatorStrategy, hold_state, require, require_int


@dataclass(frozen=True)
class RsiReversion(IndicatorStrategy):
    """Long from RSI < ``lower`` until RSI >= ``exit_level``; bearish (-1) from RSI > ``upper`` until
    RSI <= ``exit_level``; flat otherwise. Strength is ``|RSI - 50| / 50``. A new position opens only
    on RSI < ``lower`` (after a stop-out the strategy waits for a fresh oversold reading).
    """

    name: ClassVar[str] = "rsi_reversion"
    period: int = 14
    lower: float = 30.0
    upper: float = 70.0
    exit_level: float = 50.0

    def __post_init__(self) -> None:
        require_int(self.name, "period", self.period, 2)
        for field in ("lower", "upper", "exit_level"):
            v = getattr(self, field)
            require(0 < v < 100, f"{self.name}.{field} must be between 0 and 100 (exclusive), got {v}")
        require(
            self.lower < self.exit_level < self.upper,
            f"{self.name}: need lower < exit_level < upper, got lower={self.lower}, "
            f"exit_level={self.exit_level}, upper={self.upper}",
        )

    def compute(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        rsi = talib.RSI(close, self.period)
        valid = ~np.isnan(rsi)
        r = np.nan_to_num(rsi, nan=50.0)
        long_ = hold_state(r < self.lower, r >= self.exit_level, valid)
        short = hold_state(r > self.upper, r <= self.exit_level, valid)
        return long_ - short, np.abs(r - 50.0) / 50.0, r < self.lower
