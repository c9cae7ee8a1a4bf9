"""The risk engine: one test per rule, the reason codes, and their storage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from stockflow.config.sections import RiskSettings
from stockflow.domain.orders import Account, Order, OrderRequest, Position, TradingState
from stockflow.risk.decisions import load_decisions, record_decisions
from stockflow.risk.limits import MarketContext, RiskDecision, check_orders

S = dt.date(2024, 3, 5)
ACCT = Account(cash=10_000, equity=10_000, buying_power=10_000)
WIDE = RiskSettings(max_position_weight=1.0, max_total_exposure=1.0, max_open_positions=10)


def buy(sym: str = "AAPL", qty: int = 10, price: float = 100, cid: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid or f"b-{sym}-{qty}", symbol=sym, side="buy", qty=qty, reference_price=price
    )


def sell(sym: str = "AAPL", qty: int = 10, price: float = 100) -> OrderRequest:
    return OrderRequest(
        client_order_id=f"s-{sym}", symbol=sym, side="sell", qty=qty, reference_price=price, intent="exit"
    )


def market(*syms: str, stale: dict[str, dt.date] | None = None, **kw: object) -> MarketContext:
    latest = {s: S for s in syms} | (stale or {})
    return MarketContext(expected_session=S, latest_sessions=latest, **kw)  # type: ignore[arg-type]


def one(
    req: OrderRequest,
    settings: RiskSettings = WIDE,
    *,
    account: Account = ACCT,
    positions: list[Position] | None = None,
    state: TradingState = TradingState.ACTIVE,
    mkt: MarketContext | None = None,
) -> RiskDecision:
    [d] = check_orders([req], account, positions or [], state, settings, mkt or market(req.symbol))
    return d


def test_approved_when_within_every_limit() -> None:
    d = one(buy(qty=10))
    assert (d.action, d.reason_code, d.approved_qty) == ("approved", "approved", 10)


def test_fixed_fractional_sizes_down_to_two_percent_risk() -> None:
    # 2% of 10k = 200; 3% stop below 100 = 3/share -> 66 shares.
    d = one(buy(qty=100))
    assert (d.reason_code, d.approved_qty) == ("sized_down:risk_per_trade", 66)
    assert d.approved is not None and d.approved.client_order_id == "b-AAPL-100"


@pytest.mark.parametrize(
    ("settings", "qty", "code", "approved"),
    [
        (RiskSettings(max_position_weight=0.1), 50, "sized_down:max_position_weight", 10),
        (
            RiskSettings(max_position_weight=0.2, max_total_exposure=0.2),
            50,
            "sized_down:max_total_exposure",
            20,
        ),
    ],
)
def test_weight_and_exposure_caps(settings: RiskSettings, qty: int, code: str, approved: int) -> None:
    pos = (
        [Position(symbol="MSFT", qty=10, avg_entry_price=50, current_price=50)] if "exposure" in code else []
    )
    d = one(buy(qty=qty), settings, positions=pos, mkt=market("AAPL", prices={"MSFT": 50}))
    if "exposure" in code:
        approved = 15  # 20% of 10k = 2000, MSFT uses 500 -> 1500 / 100
    assert (d.reason_code, d.approved_qty) == (code, approved)


def test_never_above_cash_or_buying_power() -> None:
    poor = Account(cash=450, equity=10_000, buying_power=10_000)
    d = one(buy(qty=10), account=poor)
    assert (d.reason_code, d.approved_qty) == ("sized_down:buying_power", 4)


def test_open_buy_orders_use_buying_power_and_exposure() -> None:
    working = Order(client_order_id="w", symbol="MSFT", side="buy", qty=90, type="market", status="new")
    d = one(
        buy(qty=10),
        account=Account(cash=5000, equity=10_000, buying_power=5000),
        mkt=market("AAPL", prices={"MSFT": 50}, open_orders=[working]),
    )
    assert (d.reason_code, d.approved_qty) == ("sized_down:buying_power", 5)


def test_min_notional_denies() -> None:
    d = one(
        buy(qty=1, price=5),
        RiskSettings(min_order_notional=10, max_position_weight=1.0, max_total_exposure=1.0),
    )
    assert (d.action, d.reason_code) == ("denied", "denied:min_notional")


def test_stale_data_denies_entries() -> None:
    d = one(buy(), mkt=market("AAPL", stale={"AAPL": S - dt.timedelta(days=1)}))
    assert d.reason_code == "denied:stale_data" and "2024-03-04" in d.detail


def test_max_open_positions() -> None:
    held = [Position(symbol=s, qty=1, avg_entry_price=10, current_price=10) for s in ("A", "B")]
    d = one(
        buy(),
        RiskSettings(max_open_positions=2, max_position_weight=1.0, max_total_exposure=1.0),
        positions=held,
    )
    assert d.reason_code == "denied:max_open_positions"


def test_max_orders_per_run_counts_earlier_orders() -> None:
    reqs = [buy(s, qty=1, price=20) for s in ("AAPL", "MSFT", "IBM")]
    settings = RiskSettings(max_orders_per_run=3, max_position_weight=1.0, max_total_exposure=1.0)
    ds = check_orders(
        reqs, ACCT, [], TradingState.ACTIVE, settings, market("AAPL", "MSFT", "IBM", orders_sent_this_run=1)
    )
    assert [d.reason_code for d in ds] == ["approved", "approved", "denied:max_orders_per_run"]


def test_halted_denies_everything_reducing_allows_only_exits() -> None:
    pos = [Position(symbol="AAPL", qty=10, avg_entry_price=100)]
    for state, codes in (
        (TradingState.HALTED, ["denied:halted", "denied:halted"]),
        (TradingState.REDUCING, ["denied:reducing", "approved"]),
    ):
        ds = check_orders([buy("MSFT"), sell()], ACCT, pos, state, WIDE, market("MSFT", "AAPL"))
        assert [d.reason_code for d in ds] == codes


def test_exits_are_sized_to_what_is_held_and_need_a_position() -> None:
    pos = [Position(symbol="AAPL", qty=4, avg_entry_price=100)]
    assert one(sell(qty=10), positions=pos).reason_code == "sized_down:position_qty"
    assert one(sell(qty=10), positions=pos).approved_qty == 4
    assert one(sell("MSFT")).reason_code == "denied:no_position"


def test_short_entries_and_missing_prices_are_denied() -> None:
    short = OrderRequest(client_order_id="x", symbol="AAPL", side="sell", qty=1, reference_price=100)
    assert one(short).reason_code == "denied:short_not_allowed"
    no_price = OrderRequest(client_order_id="y", symbol="ZZZ", side="buy", qty=1)
    assert one(no_price, mkt=market("ZZZ")).reason_code == "denied:no_price"


def test_batch_shares_the_budget_in_order() -> None:
    settings = RiskSettings(max_position_weight=0.1, max_total_exposure=0.2)
    reqs = [buy("AAPL", 10), buy("MSFT", 10), buy("IBM", 10)]
    ds = check_orders(reqs, ACCT, [], TradingState.ACTIVE, settings, market("AAPL", "MSFT", "IBM"))
    assert [(d.reason_code, int(d.approved_qty)) for d in ds] == [
        ("approved", 10),
        ("approved", 10),
        ("denied:max_total_exposure", 0),
    ]


def test_decisions_are_stored_with_reason_codes(engine: Engine) -> None:
    ds = check_orders(
        [buy(qty=100), buy("MSFT", qty=1, price=5)],
        ACCT,
        [],
        TradingState.ACTIVE,
        RiskSettings(max_position_weight=1.0, max_total_exposure=1.0),
        market("AAPL", "MSFT"),
    )
    record_decisions(engine, "run-7", ds, session=S)
    rows = load_decisions(engine, "run-7")
    assert [(r.symbol, r.reason_code, r.qty_requested, r.qty_approved) for r in rows] == [
        ("AAPL", "sized_down:risk_per_trade", Decimal(100), Decimal(66)),
        ("MSFT", "denied:min_notional", Decimal(1), Decimal(0)),
    ]
    assert rows[0].session == S and "loss at stop" in rows[0].detail
