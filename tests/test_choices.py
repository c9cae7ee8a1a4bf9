"""Sources, model kinds and trade modes are declared once (stockflow.choices); everything else follows.

Each test fails when one place (settings, CLI, a flow's parameters, a factory, the README) drifts from the
declaration.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from stockflow.choices import (
    HISTORICAL_SOURCES,
    MEMBER_KINDS,
    MODEL_KINDS,
    SOURCE_NAMES,
    TRADE_MODES,
    TRADING_STATES,
)
from stockflow.config.sections import DataSettings, ModelSettings, TradingSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _param_choices(fn: object, name: str) -> set[str]:
    """The literal values a flow parameter accepts (what the Prefect UI offers)."""

    def literals(hint: object) -> set[str]:
        if typing.get_origin(hint) is typing.Literal:
            return {a for a in typing.get_args(hint) if isinstance(a, str)}
        return set().union(*(literals(a) for a in typing.get_args(hint)))

    return literals(typing.get_type_hints(getattr(fn, "fn", fn))[name])


def test_sources_are_declared_once() -> None:
    from flows.ingest import ingest_flow
    from flows.trade import trade_flow

    assert set(HISTORICAL_SOURCES) <= set(SOURCE_NAMES)
    for name in SOURCE_NAMES:
        assert DataSettings(source=name).source == name
    with pytest.raises(ValidationError):
        DataSettings(source="csv")  # type: ignore[arg-type]
    assert _param_choices(ingest_flow, "source") == set(SOURCE_NAMES)
    assert _param_choices(trade_flow, "source") == set(SOURCE_NAMES)
    assert f"--source {'|'.join(SOURCE_NAMES)}" in README


def test_model_kinds_are_declared_once() -> None:
    from flows.retrain import retrain_flow
    from models.factory import MODEL_CLASSES
    from models.members import MEMBER_CLASSES

    assert set(MODEL_CLASSES) == set(MODEL_KINDS) and set(MEMBER_CLASSES) == set(MEMBER_KINDS)
    assert ModelSettings().kinds == list(MODEL_KINDS)
    assert ModelSettings().ensemble_members == list(MEMBER_KINDS)
    with pytest.raises(ValidationError):
        ModelSettings(kinds=["xgboost"])  # type: ignore[list-item]
    assert _param_choices(retrain_flow, "kinds") == set(MODEL_KINDS)
    assert f"--kinds {','.join(MODEL_KINDS)}" in README


def test_trade_modes_are_declared_once() -> None:
    from flows.trade import trade_flow
    from stockflow.errors import ConfigError
    from stockflow.pipeline.modes import check_mode

    assert [check_mode(m) for m in TRADE_MODES] == list(TRADE_MODES)
    with pytest.raises(ConfigError, match="expected one of " + ", ".join(TRADE_MODES)):
        check_mode("yolo")
    with pytest.raises(ValidationError):
        TradingSettings(mode="yolo")  # type: ignore[arg-type]
    assert _param_choices(trade_flow, "mode") == set(TRADE_MODES)
    assert f"--mode {'|'.join(TRADE_MODES)}" in README


def test_trading_states_are_declared_once() -> None:
    from flows.kill_switch import kill_switch_flow
    from stockflow.domain.orders import TradingState

    assert [s.value for s in TradingState] == list(TRADING_STATES)
    assert _param_choices(kill_switch_flow, "state") == set(TRADING_STATES)
    assert f"stockflow state set {'|'.join(reversed(TRADING_STATES))}" in README
