"""Property tests of reconciliation (issue 10), in the manner of NautilusTrader's: broker reports and
fills shuffled, duplicated and dropped, crashes between any two steps of placing a stop. Invariants:
the ledger's final quantity equals the broker's, no fill is applied twice, cash and average price are
consistent, order ids are deterministic across replays, never two live orders for one intent, and
after every completed stop run a held position has exactly one protective stop at the broker."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from stockflow.brokers.ids import client_order_id
from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings, RiskSettings
from stockflow.db.engine import transaction
from stockflow.db.models_trading import FillRow, LedgerPosition
from stockflow.domain.orders import ZERO, Fill, OrderRequest, OrderType, Side
from stockflow.execution import execute_orders, manage_stops, reconcile
from stockflow.execution import submit as submit_mod
from stockflow.execution.fills import apply_fills
from stockflow.execution.intents import intent_order_id
from stockflow.execution.stops import BarRange
from tests.conftest import _clear
from tests.trading.conftest import D0, PRICES, bars_frame

T0 = dt.datetime(2024, 1, 3, 15, 0, tzinfo=dt.UTC)
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

fill_specs = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MSFT"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50),
        st.decimals("1.00", "500.00", places=2),
        st.decimals("0", "2.00", places=2),
    ),
    min_size=1,
    max_size=25,
)


def _fills(specs: list[tuple[str, Side, int, Decimal, Decimal]]) -> list[Fill]:
    return [
        Fill(
            execution_id=f"x{i:03d}",
            broker_order_id=f"o{i:03d}",
            symbol=sym,
            side=side,
            qty=qty,
            price=price,
            commission=comm,
            timestamp=T0 + dt.timedelta(seconds=i),
        )
        for i, (sym, side, qty, price, comm) in enumerate(specs)
    ]


@SLOW
@given(specs=fill_specs, data=st.data())
def test_fills_shuffled_duplicated_and_dropped_are_applied_exactly_once(
    sqlite_engine: Engine, specs: list[tuple[str, Side, int, Decimal, Decimal]], data: st.DataObject
) -> None:
    fills = _fills(specs)
    # The broker reports in batches: any subset (some dropped), duplicates, any order; in the end it
    # has reported every fill at least once (a dropped report comes again on the next sync).
    batches = data.draw(
        st.lists(st.lists(st.sampled_from(fills), max_size=2 * len(fills)), max_size=4), label="batches"
    )
    batches.append(data.draw(st.permutations(fills), label="final"))
    _clear(sqlite_engine)  # after the draws: nothing between them touches global state
    applied: list[str] = []
    for batch in batches:
        applied += [f.execution_id for f in apply_fills(sqlite_engine, "prop", batch)]
    assert sorted(applied) == sorted(f.execution_id for f in fills)  # each once, none twice
    with transaction(sqlite_engine) as s:
        assert s.scalars(select(func.count()).select_from(FillRow)).one() == len(fills)
        ledger = {r.symbol: r for r in s.scalars(select(LedgerPosition))}
        for sym in {f.symbol for f in fills}:
            mine = [f for f in fills if f.symbol == sym]
            led = ledger[sym]
            assert led.qty == sum((f.signed_qty for f in mine), ZERO)  # the broker's quantity
            # Average cost: basis less realized P&L is what was paid, whatever the order applied.
            # (exact up to Decimal's 28 digits: an average of a reduced short can end in ...5556)
            paid = sum((f.signed_qty * f.price for f in mine), ZERO)
            assert abs(led.cost_basis - led.realized_pnl - paid) < Decimal("1e-12")
            assert led.commissions == sum((f.commission for f in mine), ZERO)
            if led.qty == 0:
                assert led.cost_basis == 0
            else:
                assert (led.cost_basis > 0) == (led.qty > 0)  # the average price is positive


class _CrashError(Exception):
    """A process dying between two steps (the failpoints of submit_order)."""


steps = st.lists(
    st.sampled_from(
        [
            "stops",
            "crash_after_db_write",
            "crash_after_ack",
            "reconcile",
            "outside_cancel",
            "up",
            "down",
            "flat",
        ]
    ),
    min_size=1,
    max_size=12,
)


@SLOW
@given(plan=steps)
def test_crashes_between_any_two_steps_never_leave_a_position_unprotected(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, plan: list[str]
) -> None:
    _clear(sqlite_engine)
    armed: set[str] = set()

    def failpoint(name: str) -> None:
        if name in armed:
            armed.discard(name)
            raise _CrashError(name)

    monkeypatch.setattr(submit_mod, "_failpoint", failpoint)
    engine = sqlite_engine
    broker = PaperBroker(engine, BrokerSettings(slippage_bps=0))
    broker.process_bars(bars_frame(D0, PRICES))
    buy = OrderRequest(
        client_order_id=client_order_id("seed", D0, "AAPL", "buy"),
        symbol="AAPL",
        side="buy",
        qty=10,
        reference_price=100,
    )
    execute_orders(engine, broker, [buy], run_id="seed", session=D0)
    session, price = D0 + dt.timedelta(days=1), 100.0
    broker.process_bars(bars_frame(session, {**PRICES, "AAPL": price}))
    reconcile(engine, broker, run_id="seed")

    risk = RiskSettings()
    run = f"trade-{session}"
    for step in plan:
        bars = {"AAPL": BarRange(high=price, low=price * 0.99, close=price)}
        if step in ("stops", "crash_after_db_write", "crash_after_ack"):
            if step != "stops":
                armed.add(step.removeprefix("crash_").replace("after", "submit.after"))
            try:  # one run's start: reconcile (as every run does first), then the stops
                reconcile(engine, broker, run_id=run)
                manage_stops(engine, broker, risk, run_id=run, session=session, bars=bars)
            except _CrashError:
                pass  # the process died; the next step is a restart
            else:
                held = [p for p in broker.positions() if p.symbol == "AAPL" and p.qty > 0]
                stops = [o for o in broker.open_orders() if o.type is OrderType.STOP]
                if held and step == "stops":
                    assert [(o.symbol, o.qty) for o in stops] == [("AAPL", held[0].qty)], "stop not placed"
        elif step == "reconcile":
            reconcile(engine, broker, run_id=run)
            ours = {r.symbol: r.qty for r in _ledger(engine)}
            assert ours == {p.symbol: p.qty for p in broker.positions()}
        elif step == "outside_cancel":  # an exit cancelled the stop and did not fill
            for o in broker.open_orders():
                broker.cancel(o.broker_order_id or "")
        else:
            price = {"up": price * 1.06, "down": price * 0.9, "flat": price}[step]
            session += dt.timedelta(days=1)
            run = f"trade-{session}"
            broker.process_bars(
                bars_frame(session, {**PRICES, "AAPL": round(price, 2)}, low={"AAPL": price * 0.99})
            )
        armed.clear()  # a crash point not reached in this step is not carried over
        # Never two live orders for one intent (nor two protective stops for one position).
        live = broker.open_orders()
        assert len({o.client_order_id for o in live}) == len(live)
        assert sum(1 for o in live if o.type is OrderType.STOP) <= 1
        # Ids are deterministic: the same intent asked twice gets the same id.
        kw = {"run_id": run, "session": session, "symbol": "AAPL", "side": Side.SELL, "purpose": "stop"}
        assert intent_order_id(engine, content="10|97.00", **kw) == intent_order_id(  # type: ignore[arg-type]
            engine,
            content="10|97.00",
            **kw,  # type: ignore[arg-type]
        )
    reconcile(engine, broker, run_id="final")
    assert {r.symbol: r.qty for r in _ledger(engine)} == {p.symbol: p.qty for p in broker.positions()}


def _ledger(engine: Engine) -> list[LedgerPosition]:
    with transaction(engine) as s:
        return [r for r in s.scalars(select(LedgerPosition)) if r.qty != 0]
