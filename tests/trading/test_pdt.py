"""The pattern-day-trader rule (issue 10): the risk engine refuses a 4th day trade in 5 business days
under $25k with ``denied:pdt``; the execution layer refuses it from the ledger before the broker; the
fake refuses it as Alpaca does (403); the paper broker too when ``broker.paper_pdt`` is on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings, RiskSettings
from stockflow.db.engine import transaction
from stockflow.db.models_trading import PaperFillRow
from stockflow.domain.orders import Account, OrderRequest, Position, Side, TradingState
from stockflow.errors import RejectedError
from stockflow.execution import execute_orders, reconcile
from stockflow.risk.limits import MarketContext, check_orders
from stockflow.risk.pdt import DayTrades, business_window, day_trades
from tests.fakes.alpaca_trading import FakeAlpacaTrading
from tests.trading.conftest import D0, PRICES, bars_frame

WED = dt.date(2024, 1, 3)
WIDE = RiskSettings(max_position_weight=1.0, max_total_exposure=1.0, max_open_positions=10)


def _sell(sym: str = "AAPL") -> OrderRequest:
    return OrderRequest(
        client_order_id=f"s-{sym}", symbol=sym, side="sell", qty=5, reference_price=100, intent="exit"
    )


def _judge(req: OrderRequest, equity: int, trades: DayTrades) -> str:
    acct = Account(cash=equity, equity=equity, buying_power=equity)
    pos = [Position(symbol="AAPL", qty=5, avg_entry_price=100)]
    mkt = MarketContext(expected_session=WED, latest_sessions={"AAPL": WED}, day_trades=trades)
    [d] = check_orders([req], acct, pos, TradingState.ACTIVE, WIDE, mkt)
    return d.reason_code


def test_the_risk_engine_refuses_a_fourth_day_trade_under_25k() -> None:
    three = DayTrades(WED, 3, {"AAPL": frozenset({Side.BUY})})
    assert _judge(_sell(), 10_000, three) == "denied:pdt"
    assert _judge(_sell(), 30_000, three) == "approved"  # not under $25k
    assert _judge(_sell(), 10_000, DayTrades(WED, 2, three.sides_today)) == "approved"  # the 3rd is fine
    assert _judge(_sell(), 10_000, DayTrades(WED, 3, {})) == "approved"  # not bought today: no day trade
    off = RiskSettings(**{**WIDE.model_dump(), "pdt_min_equity": 0})
    acct = Account(cash=10_000, equity=10_000, buying_power=10_000)
    mkt = MarketContext(expected_session=WED, latest_sessions={"AAPL": WED}, day_trades=three)
    [d] = check_orders(
        [_sell()], acct, [Position(symbol="AAPL", qty=5, avg_entry_price=100)], "ACTIVE", off, mkt
    )  # type: ignore[arg-type]
    assert d.reason_code == "approved"


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(["A", "B", "C"]), st.sampled_from(list(Side))),
        max_size=30,
    )
)
def test_day_trades_count_symbol_days_with_both_sides_in_the_window(
    raw: list[tuple[int, str, Side]],
) -> None:
    fills = [(WED - dt.timedelta(days=d), sym, side) for d, sym, side in raw]
    got = day_trades(fills, WED)
    window = set(business_window(WED))
    pairs = {(d, s) for d, s, _ in fills if d in window}
    expect = sum(1 for d, s in pairs if {x for dd, ss, x in fills if (dd, ss) == (d, s)} == set(Side))
    assert got.count == expect and len(window) == 5
    assert all(d.weekday() < 5 for d in window)


def _round_trips(fake: FakeAlpacaTrading, syms: list[str]) -> None:
    for sym in syms:
        fake.outside_order(sym, "buy", 1)
        fake.outside_order(sym, "sell", 1)


def test_the_fake_refuses_a_fourth_day_trade_as_alpaca_does(
    alpaca: AlpacaBroker, fake_alpaca: FakeAlpacaTrading
) -> None:
    _round_trips(fake_alpaca, ["AAPL", "MSFT", "IBM"])
    assert alpaca.account().equity < 25_000 and fake_alpaca.day_trades() == 3
    alpaca.submit(
        OrderRequest(client_order_id="p-buy", symbol="AAPL", side="buy", qty=1, reference_price=100)
    )
    with pytest.raises(RejectedError, match="pattern day trading"):
        alpaca.submit(_sell("AAPL").with_qty(1))
    fake_alpaca.next_day()  # the buy is from yesterday now: selling it is no day trade
    alpaca.submit(_sell("AAPL").with_qty(1).model_copy(update={"client_order_id": "s-AAPL-2"}))


def test_execution_refuses_the_fourth_day_trade_before_the_broker(
    alpaca: AlpacaBroker, fake_alpaca: FakeAlpacaTrading, sqlite_engine: Engine
) -> None:
    _round_trips(fake_alpaca, ["AAPL", "MSFT", "IBM"])
    fake_alpaca.outside_order("AAPL", "buy", 5)
    reconcile(sqlite_engine, alpaca, run_id="r0", adopt_unexplained=True)
    posts = fake_alpaca.count("POST", "/v2/orders")
    [res] = execute_orders(sqlite_engine, alpaca, [_sell("AAPL")], run_id="r1", session=WED)
    assert res.outcome == "refused" and res.error is not None and res.error.startswith("denied:pdt:")
    assert fake_alpaca.count("POST", "/v2/orders") == posts  # nothing reached the broker
    [ok] = execute_orders(  # the rule turned off on our side
        sqlite_engine, alpaca, [_sell("AAPL")], run_id="r1", session=WED, pdt_min_equity=0
    )
    # Without our guard the broker itself refuses it (403): what the guard spares the account.
    assert ok.outcome == "rejected" and "pattern day trading" in (ok.error or "")


def test_the_paper_broker_enforces_pdt_when_configured(sqlite_engine: Engine) -> None:
    b = PaperBroker(sqlite_engine, BrokerSettings(slippage_bps=0, paper_pdt=True))
    b.process_bars(bars_frame(D0, PRICES))  # last session D0 (Tue): orders fill on Wed
    rows = [(D0 - dt.timedelta(days=1), "MSFT"), (D0, "IBM"), (WED, "MSFT")]
    with transaction(sqlite_engine) as s:
        for i, (day, sym) in enumerate(rows):
            for side in ("buy", "sell"):
                s.add(_fill(f"dt-{i}-{side}", day, sym, side))
        s.add(_fill("today-buy", WED, "AAPL", "buy"))
    from stockflow.db.models_trading import PaperPositionRow

    with transaction(sqlite_engine) as s:
        s.add(PaperPositionRow(symbol="AAPL", qty=Decimal(5), cost_basis=Decimal(500)))
    with pytest.raises(RejectedError, match="pattern day trading"):
        b.submit(_sell("AAPL"))
    plain = PaperBroker(sqlite_engine, BrokerSettings(slippage_bps=0))  # paper_pdt off: accepted
    assert plain.submit(_sell("AAPL")).client_order_id == "s-AAPL"


def _fill(eid: str, day: dt.date, sym: str, side: str) -> PaperFillRow:
    return PaperFillRow(
        execution_id=eid,
        order_id=eid,
        client_order_id=eid,
        symbol=sym,
        side=side,
        qty=Decimal(1),
        price=Decimal(100),
        commission=Decimal(0),
        session=day,
        filled_at=dt.datetime.combine(day, dt.time(14, 30), tzinfo=dt.UTC),
    )


def test_start_of_run_hands_the_day_trades_to_the_risk_engine(sqlite_engine: Engine) -> None:
    from stockflow.execution import start_of_run

    b = PaperBroker(sqlite_engine, BrokerSettings(slippage_bps=0))
    sor = start_of_run(sqlite_engine, b, WIDE, run_id="r", session=D0, bars=bars_frame(D0, PRICES))
    assert sor.day_trades is not None and sor.day_trades.trade_date == WED and sor.day_trades.count == 0
    rich = RiskSettings(**{**WIDE.model_dump(), "pdt_min_equity": 5_000})  # 10k is above it: not counted
    assert start_of_run(sqlite_engine, b, rich, run_id="r", session=D0).day_trades is None
