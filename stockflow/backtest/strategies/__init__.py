"""The strategy library behind one interface (:class:`Strategy`), and lookup by name.

Names (and aliases): ``sma_crossover`` (sma), ``rsi_reversion`` (rsi), ``macd_trend`` (macd),
``bollinger_zscore`` (bollinger, zscore, bb). The ML strategy (``ml``) and the ensemble
(``ensemble``) need more than parameters and are built by :mod:`stockflow.backtest.runner`.
"""

from __future__ import annotations

from typing import Any

from stockflow.backtest.strategies.base import (
    SIGNAL_SCHEMA,
    IndicatorStrategy,
    Strategy,
    empty_signals,
    hold_state,
)
from stockflow.backtest.strategies.bollinger_zscore import BollingerZScore
from stockflow.backtest.strategies.macd_trend import MacdTrend
from stockflow.backtest.strategies.ml import MLStrategy, entry_threshold_for, probabilities_to_signals
from stockflow.backtest.strategies.rsi_reversion import RsiReversion
from stockflow.backtest.strategies.sma_crossover import SmaCrossover
from stockflow.errors import ConfigError

#: Rule-based strategies by canonical name.
RULE_STRATEGIES: dict[str, type[IndicatorStrategy]] = {
    SmaCrossover.name: SmaCrossover,
    RsiReversion.name: RsiReversion,
    MacdTrend.name: MacdTrend,
    BollingerZScore.name: BollingerZScore,
}

#: Every strategy name the CLI and the flow accept.
STRATEGY_NAMES: tuple[str, ...] = (*RULE_STRATEGIES, "ml", "ensemble")

ALIASES: dict[str, str] = {
    "sma": "sma_crossover",
    "rsi": "rsi_reversion",
    "macd": "macd_trend",
    "bollinger": "bollinger_zscore",
    "zscore": "bollinger_zscore",
    "bb": "bollinger_zscore",
}


def canonical_name(name: str) -> str:
    """The canonical strategy name of ``name`` or an alias; :class:`ConfigError` listing the choices."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in STRATEGY_NAMES:
        raise ConfigError(
            f"strategies: unknown strategy {name!r}; choose from {', '.join(STRATEGY_NAMES)} "
            f"(aliases {', '.join(sorted(ALIASES))})"
        )
    return key


def make_strategy(name: str, **params: Any) -> IndicatorStrategy:
    """A rule-based strategy by name with parameters; errors name the bad parameter."""
    key = canonical_name(name)
    if key not in RULE_STRATEGIES:
        raise ConfigError(f"strategies: {key!r} is not a rule-based strategy (build it with the runner)")
    cls = RULE_STRATEGIES[key]
    fields = set(cls.__dataclass_fields__)
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(f"{key}: unknown parameter(s) {unknown}; known: {sorted(fields)}")
    return cls(**params)


__all__ = [
    "ALIASES",
    "RULE_STRATEGIES",
    "SIGNAL_SCHEMA",
    "STRATEGY_NAMES",
    "BollingerZScore",
    "IndicatorStrategy",
    "MLStrategy",
    "MacdTrend",
    "RsiReversion",
    "SmaCrossover",
    "Strategy",
    "canonical_name",
    "empty_signals",
    "entry_threshold_for",
    "hold_state",
    "make_strategy",
    "probabilities_to_signals",
]
