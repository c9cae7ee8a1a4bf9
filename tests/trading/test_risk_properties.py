"""Property tests of the pure risk functions and of fill/position arithmetic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.domain.orders import Book, Fill, Side, book_from_fills
from stockflow.risk.sizing import position_size
from stockflow.risk.stops import initial_stop, update_trailing_stop

money = st.floats(min_value=0.01, max_value=1e7, allow_nan=False, allow_infinity=False)
prices = st.floats(min_value=0.01, max_value=5000, allow_nan=False, allow_infinity=False)
fractions = st.floats(min_value=1e-4, max_value=1.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(equity=money, cash=money, price=prices, stop_frac=st.floats(0.001, 0.99), risk=fractions, w=fractions)
def test_size_never_above_risk_cash_or_weight_and_never_negative(  # noqa: PLR0917
    equity: float, cash: float, price: float, stop_frac: float, risk: float, w: float
) -> None:
    stop = price * (1 - stop_frac)
    n = position_size(equity, cash, price, stop, risk, w)
    assert isinstance(n, int)
    assert n >= 0
    assert n * abs(price - stop) <= risk * equity
    assert n * price <= cash
    assert n * price <= w * equity


@settings(max_examples=200, deadline=None)
@given(equity=money, cash=money, price=prices, stop_frac=st.floats(0.001, 0.5), risk=fractions, w=fractions)
def test_size_is_maximal(  # noqa: PLR0917
    equity: float, cash: float, price: float, stop_frac: float, risk: float, w: float
) -> None:
    """One more share would break a limit (with a little float slack), so sizing does not waste budget."""
    stop = price * (1 - stop_frac)
    n = position_size(equity, cash, price, stop, risk, w)
    m = n + 1
    eps = 1e-9
    assert (
        m * abs(price - stop) > risk * equity * (1 - eps)
        or m * price > cash * (1 - eps)
        or m * price > w * equity * (1 - eps)
    )


@given(
    st.sampled_from([0.0, -1.0, float("nan"), float("inf")]),
    st.sampled_from(["equity", "cash", "price", "stop"]),
)
def test_degenerate_inputs_give_zero(bad: float, which: str) -> None:
    args = {"equity": 10_000.0, "cash": 10_000.0, "price": 100.0, "stop": 97.0}
    args[which] = bad
    assert position_size(args["equity"], args["cash"], args["price"], args["stop"], 0.02, 0.1) == 0


def test_size_example_two_percent_rule() -> None:
    # $10k equity, 2% risk = $200, stop 3% below $100 -> $3/share -> 66 shares, but weight 10% -> 10 shares.
    assert position_size(10_000, 10_000, 100, 97, 0.02, 1.0) == 66
    assert position_size(10_000, 10_000, 100, 97, 0.02, 0.10) == 10
    assert position_size(10_000, 450, 100, 97, 0.02, 1.0) == 4
    assert position_size(10_000, 10_000, 100, 100, 0.02, 1.0) == 0


@given(entry=prices, stop_loss=st.floats(0.001, 0.99))
def test_initial_stop_below_entry(entry: float, stop_loss: float) -> None:
    s = initial_stop(entry, stop_loss)
    assert 0 < s < entry


@given(
    entry=prices,
    highs=st.lists(st.floats(0.5, 3.0), min_size=1, max_size=30),
    trail=st.floats(0.001, 0.5),
    act=st.floats(0.0, 0.5),
)
def test_trailing_stop_never_moves_down_and_stays_below_high(
    entry: float, highs: list[float], trail: float, act: float
) -> None:
    stop = initial_stop(entry, 0.03)
    high = entry
    for h in highs:
        high = max(high, entry * h)
        new = update_trailing_stop(entry, stop, high, trail, act)
        assert new >= stop
        assert new == stop or new <= high
        if high < entry * (1 + act):
            assert new == stop
        stop = new


def test_trailing_stop_example() -> None:
    assert update_trailing_stop(100, 97, 104.9, 0.02, 0.05) == 97  # not yet 5% in profit
    assert abs(update_trailing_stop(100, 97, 110, 0.02, 0.05) - 107.8) < 1e-9
    assert update_trailing_stop(100, 108, 105, 0.02, 0.05) == 108  # never down


_T0 = dt.datetime(2024, 1, 2, 15, 0, tzinfo=dt.UTC)
_fill = st.builds(
    lambda i, side, qty, cents, comm: Fill(
        execution_id=f"x{i}",
        broker_order_id="o",
        symbol="AAPL",
        side=side,
        qty=qty,
        price=Decimal(cents) / 100,
        commission=Decimal(comm) / 100,
        timestamp=_T0,
    ),
    st.integers(0, 10**6),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(1, 500),
    st.integers(1, 100_000),
    st.integers(0, 500),
)


@settings(max_examples=300, deadline=None)
@given(fills=st.lists(_fill, min_size=1, max_size=12), data=st.data())
def test_fills_in_any_order_give_same_position_and_cash(fills: list[Fill], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(fills))
    a = book_from_fills(fills, cash=10_000)
    b = book_from_fills(list(shuffled), cash=10_000)
    assert a.qty == b.qty
    assert a.cash == b.cash
    assert a.commissions == b.commissions
    assert a.qty == sum(f.signed_qty for f in fills)
    assert a.cash == Decimal(10_000) + sum(f.cash_flow for f in fills)
    # Total P&L at any common mark (realized + unrealized) does not depend on the order either; the
    # average price is a 28-digit Decimal quotient, hence the (tiny) tolerance.
    mark = Decimal("123.45")
    total_a = a.realized_pnl + mark * a.qty - a.cost_basis
    total_b = b.realized_pnl + mark * b.qty - b.cost_basis
    assert abs(total_a - total_b) < Decimal("1e-12")
    assert abs(total_a - (a.cash - 10_000 + a.commissions + mark * a.qty)) < Decimal("1e-12")


@settings(max_examples=200, deadline=None)
@given(
    fills=st.lists(_fill.map(lambda f: f.model_copy(update={"side": Side.BUY})), min_size=1, max_size=10),
    data=st.data(),
)
def test_buys_in_any_order_give_same_cost_basis(fills: list[Fill], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(fills))
    a, b = book_from_fills(fills), book_from_fills(list(shuffled))
    assert a.cost_basis == b.cost_basis == sum(f.qty * f.price for f in fills)


def _f(eid: str, side: Side, qty: int, price: str, commission: str = "0") -> Fill:
    return Fill(
        execution_id=eid,
        broker_order_id="o",
        symbol="X",
        side=side,
        qty=qty,
        price=price,
        commission=commission,
        timestamp=_T0,
    )


def test_round_trip_realizes_pnl() -> None:
    b = Book(cash=Decimal(1000))
    b = b.apply(_f("1", Side.BUY, 10, "10.00", commission="1"))
    b = b.apply(_f("2", Side.SELL, 4, "12.50"))
    assert b.qty == 6 and b.avg_entry_price == Decimal(10) and b.realized_pnl == Decimal(10)
    b = b.apply(_f("3", Side.SELL, 10, "9.00"))
    assert b.qty == -4 and b.avg_entry_price == Decimal(9) and b.realized_pnl == Decimal(4)
    assert b.cash == Decimal(1000) - 100 - 1 + 50 + 90
