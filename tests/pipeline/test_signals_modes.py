"""Signals from predictions and their routes under each trading mode."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import pytest

from stockflow.config.sections import TradingSettings
from stockflow.errors import ConfigError
from stockflow.pipeline.modes import Route, route_signals
from stockflow.pipeline.signals import Action, feature_drivers, make_signals

D = dt.date(2017, 6, 30)


@dataclass(frozen=True)
class Pred:
    symbol: str
    session: dt.date
    model_version: str
    probability: float


def _sig(p: float, held: float = 0.0, sym: str = "AAPL"):
    return make_signals([Pred(sym, D, "v1", p)], {sym: held}, TradingSettings())[0]


def test_actions_and_confidence_follow_probability_and_holdings() -> None:
    buy = _sig(0.7)
    assert (buy.action, buy.confidence) == (Action.BUY, pytest.approx(0.7))
    assert buy.model_confidence == pytest.approx(0.4)
    # Flat and bearish: no shorts by default.
    assert _sig(0.3).action is Action.HOLD
    # Held long and the model turns bearish: exit.
    exit_ = _sig(0.3, held=10)
    assert exit_.action is Action.SELL and exit_.is_exit and exit_.confidence == pytest.approx(0.7)
    # Held long, still bullish: no pyramiding.
    assert _sig(0.9, held=10).action is Action.HOLD
    # With shorts allowed a flat bearish symbol is a SELL entry.
    short = make_signals([Pred("X", D, "v1", 0.2)], {}, TradingSettings(allow_short=True))[0]
    assert short.action is Action.SELL and not short.is_exit


def test_latest_prediction_per_symbol_wins_and_bad_probability_is_refused() -> None:
    preds = [Pred("A", D - dt.timedelta(days=1), "v1", 0.9), Pred("A", D, "v1", 0.2)]
    (s,) = make_signals(preds, {}, TradingSettings())
    assert s.session == D and s.action is Action.HOLD
    with pytest.raises(ValueError, match="BAD"):
        make_signals([Pred("BAD", D, "v1", float("nan"))], {}, TradingSettings())
    with pytest.raises(ValueError, match="BAD"):
        make_signals([Pred("BAD", D, "v1", 1.2)], {}, TradingSettings())


@pytest.mark.parametrize(
    ("mode", "p", "held", "route"),
    [
        ("auto", 0.85, 0, Route.AUTO),
        ("auto", 0.8, 0, Route.AUTO),  # the threshold itself trades
        ("auto", 0.7, 0, Route.IGNORED),
        ("auto", 0.45, 5, Route.AUTO),  # exits trade on their own
        ("hybrid", 0.85, 0, Route.AUTO),
        ("hybrid", 0.7, 0, Route.APPROVAL),
        ("hybrid", 0.55, 0, Route.APPROVAL),
        ("hybrid", 0.54, 0, Route.IGNORED),
        ("hybrid", 0.45, 5, Route.AUTO),
        ("manual", 0.95, 0, Route.APPROVAL),  # every order needs approval
        ("manual", 0.6, 0, Route.APPROVAL),
        ("manual", 0.52, 0, Route.IGNORED),
        ("manual", 0.45, 5, Route.APPROVAL),
        ("manual", 0.45, 0, Route.IGNORED),  # HOLD
    ],
)
def test_mode_thresholds(mode: str, p: float, held: float, route: Route) -> None:
    settings = TradingSettings(auto_threshold=0.8, approval_threshold=0.55)
    sig = make_signals([Pred("A", D, "v1", p)], {"A": held}, settings)
    (r,) = route_signals(sig, mode, settings)
    assert r.route is route, r.reason


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="auto, manual, hybrid"):
        route_signals([_sig(0.9)], "yolo", TradingSettings())


def test_drivers_rank_standardized_values_by_importance() -> None:
    n = 60
    frame = pl.DataFrame(
        {
            "symbol": ["A"] * n,
            "session": [D - dt.timedelta(days=n - i) for i in range(n)],
            "f_flat": [1.0 + 0.01 * (i % 3) for i in range(n - 1)] + [1.5],  # huge z on the last row
            "f_mild": [float(i % 10) for i in range(n - 1)] + [9.0],
            "f_null": [None] * n,
        }
    )
    drivers = feature_drivers(frame, ["f_flat", "f_mild", "f_null"], top=2)
    names = [d.feature for d in drivers["A"]]
    assert names[0] == "f_flat" and "f_null" not in names
    assert drivers["A"][0].z > 10
    # An importance of zero pushes a feature to the bottom.
    ranked = feature_drivers(frame, ["f_flat", "f_mild"], {"f_flat": 0.0, "f_mild": 1.0}, top=2)
    assert ranked["A"][0].feature == "f_mild"
