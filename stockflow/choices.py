"""The names a person chooses from, declared once: data sources, model kinds, trade modes.

Settings validation (:mod:`stockflow.config`), the CLI's help and checks, the flows' parameters (the
choices the Prefect UI offers), the factories (:func:`stockflow.sources.get_source`, :mod:`models.factory`)
and the docs (checked by ``tests/test_choices.py``) all take them from here. A leaf module: it imports
nothing of stockflow.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Where bars come from (``data.source``, ``--source``, the ingest and trade flows' ``source``).
SourceName = Literal["sample", "files", "alpaca", "yfinance"]
SOURCE_NAMES: tuple[SourceName, ...] = get_args(SourceName)
#: The sources that replay stored history (a trade run on them takes its session from the data).
HISTORICAL_SOURCES: tuple[SourceName, ...] = ("sample", "files")

#: The single models an ensemble is made of (``models.ensemble_members``).
MemberKind = Literal["lightgbm", "lstm", "momentum"]
MEMBER_KINDS: tuple[MemberKind, ...] = get_args(MemberKind)
#: Every model kind a retrain trains (``models.kinds``, ``--kinds``, the retrain flow's ``kinds``).
ModelKind = Literal[MemberKind, "ensemble"]
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)

#: How a trade run's orders are approved (``trading.mode``, ``--mode``, the trade flow's ``mode``): auto sends
#: them, manual asks a person for every one, hybrid asks for the uncertain or large ones.
TradeMode = Literal["auto", "manual", "hybrid"]
TRADE_MODES: tuple[TradeMode, ...] = get_args(TradeMode)

#: The kill switch's states (``stockflow state set``, the kill-switch flow's ``state``; the enum
#: :class:`stockflow.domain.orders.TradingState` has these values): ACTIVE trades, REDUCING only exits,
#: HALTED sends nothing but cancels.
TradingStateName = Literal["ACTIVE", "REDUCING", "HALTED"]
TRADING_STATES: tuple[TradingStateName, ...] = get_args(TradingStateName)
