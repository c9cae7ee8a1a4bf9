"""Signals from the target book, and the routes of its orders under each trading mode."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import pytest

from stockflow.config.sections import PortfolioSettings
from stockflow.errors import ConfigError
from stockflow.pipeline.modes import Route, check_mode, route_order
from stockflow.pipeline.signals import Action, Signal, book_signals, feature_drivers
from stockflow.portfolio import BookRules, Score, target_book

D = dt.date(2017, 6, 30)
RULES = BookRules(
    top_k=2, hold_buffer=0, max_changes=None, max_open_positions=5, risk_per_trade=0.02, stop_loss=0.03,
    max_position_weight=0.1, max_total_exposure=0.5, min_order_notional=1.0,
)  # fmt: skip


@dataclass(frozen=True)
class Pred:
    symbol: str
    session: dt.date
    model_version: str
    probability: float
    score: float
    prob_outperform: float
    expected_excess: float = 0.0


def _pred(sym: str, score: float, p: float = 0.6) -> Pred:
    return Pred(sym, D, "v1", p, score, p, 0.001)


def test_signals_follow_the_book_and_carry_one_meaning_of_confidence() -> None:
    preds = [_pred("A", 3.0, 0.7), _pred("B", 2.0), _pred("C", 1.0, 0.4)]
    book = target_book(
        {p.symbol: Score(p.score, p.prob_outperform, 0.0) for p in preds},
        {"C": 5.0, "GONE": 3.0},
        {"A": 10.0, "B": 10.0, "C": 10.0},
        equity=10_000,
        cash=10_000,
        rules=RULES,
    )
    sig = {s.symbol: s for s in book_signals(book, preds, D)}
    assert [s for s in sig] == ["A", "B", "C", "GONE"]  # rank order, unscored last
    assert sig["A"].action is Action.BUY and sig["A"].rank == 1 and sig["A"].confidence == 0.7
    assert sig["C"].action is Action.SELL and sig["C"].is_exit
    assert sig["GONE"].action is Action.SELL and sig["GONE"].rank is None
    assert "P(outperform)=0.700" in sig["A"].explain() and "rank 1" in sig["A"].explain()
    with pytest.raises(ValueError, match="BAD"):
        book_signals(book, [Pred("BAD", D, "v1", 0.5, 1.0, float("nan"))], D)


def _sig(p: float) -> Signal:
    return Signal("A", D, Action.BUY, p, p, "v1", rank=1, score=p)


@pytest.mark.parametrize(
    ("mode", "p", "notional", "route"),
    [
        ("auto", 0.51, 100.0, Route.AUTO),  # auto sends every order of the book
        ("auto", 0.95, 1e9, Route.AUTO),
        ("manual", 0.95, 100.0, Route.APPROVAL),  # manual asks for all
        ("hybrid", 0.50, 100.0, Route.APPROVAL),  # in the band [0.45, 0.55]
        ("hybrid", 0.45, 100.0, Route.APPROVAL),  # band ends are inclusive
        ("hybrid", 0.55, 100.0, Route.APPROVAL),
        ("hybrid", 0.56, 100.0, Route.AUTO),
        ("hybrid", 0.44, 100.0, Route.AUTO),
        ("hybrid", 0.70, 6_000.0, Route.APPROVAL),  # large notional
        ("hybrid", 0.70, 5_000.0, Route.AUTO),
    ],
)
def test_mode_routes(mode: str, p: float, notional: float, route: Route) -> None:
    r = route_order(_sig(p), notional, check_mode(mode), PortfolioSettings())
    assert r.route is route, r.reason


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="auto, manual, hybrid"):
        check_mode("yolo")


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
