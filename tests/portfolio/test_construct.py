"""The target book and its orders: examples and properties (hypothesis) of the one construction rule
the live trade run and the backtester share."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.config import Settings, load_settings
from stockflow.errors import ConfigError
from stockflow.portfolio import BookRules, Score, orders_for, target_book
from stockflow.risk.stops import initial_stop

SYMS = [f"S{i:02d}" for i in range(25)]


def rules(**kw: object) -> BookRules:
    base: dict[str, object] = dict(
        top_k=3, hold_buffer=1, max_changes=1, max_open_positions=5, risk_per_trade=0.02,
        stop_loss=0.03, max_position_weight=0.10, max_total_exposure=0.30, min_order_notional=10.0,
    )  # fmt: skip
    base.update(kw)
    return BookRules(**base)  # type: ignore[arg-type]


def scores_of(values: dict[str, float]) -> dict[str, Score]:
    return {s: Score(v, 0.5 + v / 100, v / 1000) for s, v in values.items()}


def test_first_session_enters_the_top_k_sized_by_the_risk_rules() -> None:
    sc = scores_of({s: float(i) for i, s in enumerate(SYMS[:8])})
    prices = {s: 50.0 for s in sc}
    tb = target_book(sc, {}, prices, equity=10_000, cash=10_000, rules=rules())
    assert [ln.symbol for ln in tb.of("enter")] == ["S07", "S06", "S05"]
    # weight cap min(10%, 30% / 3) = 10% of 10,000 at 50 = 20 shares; risk 2% at a 3% stop allows more.
    assert [ln.target_qty for ln in tb.of("enter")] == [20.0, 20.0, 20.0]
    orders = orders_for(tb, {})
    assert [(o.symbol, o.side, o.qty, o.rank) for o in orders] == [
        ("S07", "buy", 20.0, 1), ("S06", "buy", 20.0, 2), ("S05", "buy", 20.0, 3),
    ]  # fmt: skip


def test_orders_are_the_difference_exits_first() -> None:
    sc = scores_of({s: float(i) for i, s in enumerate(SYMS[:8])})  # S07 best
    prices = {s: 50.0 for s in sc}
    book = {"S07": 20.0, "S06": 20.0, "S00": 20.0}  # S00 ranks 8th > k + buffer = 4
    tb = target_book(sc, book, prices, equity=10_000, cash=7_000, rules=rules(max_total_exposure=0.5))
    assert [ln.symbol for ln in tb.of("keep")] == ["S07", "S06"]
    assert [ln.symbol for ln in tb.of("exit")] == ["S00"]
    orders = orders_for(tb, book)
    assert [(o.symbol, o.intent) for o in orders] == [("S00", "exit"), ("S05", "entry")]
    assert orders[0].qty == 20.0 and orders[0].side == "sell"


def test_a_full_book_waits_for_its_leaver_before_the_replacement_enters() -> None:
    sc = scores_of({s: float(i) for i, s in enumerate(SYMS[:8])})
    prices = {s: 50.0 for s in sc}
    book = {"S07": 20.0, "S06": 20.0, "S00": 20.0}
    tb = target_book(sc, book, prices, equity=10_000, cash=7_000, rules=rules(max_open_positions=3))
    assert [o.intent for o in orders_for(tb, book)] == ["exit"]
    assert [ln.symbol for ln in tb.unfilled] == ["S05"] and "room" in tb.unfilled[0].note


def test_top_k_is_capped_by_max_open_positions_and_settings_are_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert rules(top_k=10, max_open_positions=4).k == 4
    assert rules(top_k=10, max_open_positions=4, max_total_exposure=0.2).weight_cap == pytest.approx(0.05)
    s = Settings(portfolio={"top_k": 7, "hold_buffer": 0, "max_changes": None})  # type: ignore[arg-type]
    assert BookRules.from_settings(s).max_changes is None
    for bad, name in (
        ({"top_k": 0}, "top_k"),
        ({"hold_buffer": -1}, "hold_buffer"),
        ({"max_changes": -2}, "max_changes"),
        ({"approval_band_low": 0.6, "approval_band_high": 0.5}, "approval_band_low"),
    ):
        with pytest.raises(Exception, match=name):
            Settings(portfolio=bad)  # type: ignore[arg-type]
    monkeypatch.setenv("STOCKFLOW_PORTFOLIO__TOP_K", "0")
    with pytest.raises(ConfigError, match=r"portfolio\.top_k"):
        load_settings()
    with pytest.raises(ConfigError, match=r"portfolio\.top_k"):
        target_book({}, {}, {}, equity=1.0, cash=1.0, rules=rules(top_k=0, max_open_positions=0))


books = st.dictionaries(st.sampled_from(SYMS), st.integers(1, 50).map(float), max_size=8)
score_maps = st.dictionaries(
    st.sampled_from(SYMS), st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3)), max_size=25
)


@settings(max_examples=150, deadline=None)
@given(
    sc=score_maps,
    book=books,
    prices=st.lists(st.floats(1, 400, allow_nan=False), min_size=len(SYMS), max_size=len(SYMS)),
    k=st.integers(1, 8),
    buffer=st.integers(0, 4),
    max_changes=st.one_of(st.none(), st.integers(0, 4)),
    max_open=st.integers(1, 10),
    exposure=st.floats(0.05, 1.0),
    weight=st.floats(0.01, 0.5),
    equity=st.floats(1_000, 1_000_000),
    cash_share=st.floats(0, 1),
)
def test_book_never_breaks_k_a_risk_limit_or_the_change_bound(  # noqa: PLR0917 (hypothesis arguments)
    sc: dict[str, float],
    book: dict[str, float],
    prices: list[float],
    k: int,
    buffer: int,
    max_changes: int | None,
    max_open: int,
    exposure: float,
    weight: float,
    equity: float,
    cash_share: float,
) -> None:
    weight = min(weight, exposure)
    r = rules(top_k=k, hold_buffer=buffer, max_changes=max_changes, max_open_positions=max_open,
              max_total_exposure=exposure, max_position_weight=weight)  # fmt: skip
    px = dict(zip(SYMS, prices, strict=True))
    cash = equity * cash_share
    tb = target_book(scores_of(sc), book, px, equity=equity, cash=cash, rules=r)
    orders = orders_for(tb, book)
    # Never more than k names targeted (k itself within max_open_positions).
    assert len(tb.selection.target) <= r.k <= max_open
    held_after = {s for s in book} - {o.symbol for o in orders if o.intent == "exit"}
    held_after |= {o.symbol for o in orders if o.intent == "entry"}
    assert len(held_after - set(book)) <= max(0, max_open - len(book))  # new names fit the free slots
    # Turnover: with a book inside k, at most max_changes leave by rank; entries fill empty slots plus
    # the leavers' slots.
    exits = [o for o in orders if o.intent == "exit"]
    entries = [o for o in orders if o.intent == "entry"]
    if max_changes is not None and len(book) <= r.k:
        assert len(exits) <= max_changes
    assert len(entries) <= max(0, r.k - len(book)) + len(exits)
    # Exits first, then entries in rank order.
    assert orders == exits + entries
    assert [o.rank for o in entries] == sorted(o.rank for o in entries if o.rank is not None)
    # Every entry within the risk limits: weight cap, loss at the stop, cash and exposure room.
    held_value = sum(q * px[s] for s, q in book.items())
    spent = 0.0
    for o in entries:
        assert o.qty == int(o.qty) and o.qty >= 1
        assert o.qty * o.price <= r.weight_cap * equity + 1e-6
        assert o.qty * (o.price - initial_stop(o.price, r.stop_loss)) <= r.risk_per_trade * equity + 1e-6
        assert o.qty * o.price >= r.min_order_notional
        spent += o.qty * o.price
    assert spent <= cash + 1e-6
    assert held_value + spent <= exposure * equity + 1e-6 or not entries
    assert all(math.isfinite(o.qty) for o in orders)
