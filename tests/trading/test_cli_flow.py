"""The command line (state show/set/reset, orders, positions, reconcile) and the kill-switch flow
against a real Prefect API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from stockflow.brokers.paper import PaperBroker
from stockflow.cli import app
from stockflow.config import Settings
from stockflow.db import get_engine, upgrade
from stockflow.db.engine import transaction
from stockflow.db.models_trading import LedgerPosition
from stockflow.domain.orders import OrderRequest, TradingState
from stockflow.execution.submit import submit_order
from stockflow.risk.breaker import check_daily_loss
from stockflow.risk.state import get_state, state_history
from tests.trading.conftest import D0, PRICES, bars_frame

runner = CliRunner()


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    engine = get_engine(settings.db_url)
    upgrade(engine)
    return engine


def test_state_commands(settings: Settings) -> None:
    r = runner.invoke(app, ["state", "show"])
    assert r.exit_code == 0 and "trading state: ACTIVE" in r.output
    r = runner.invoke(app, ["state", "set", "HALTED", "--reason", "broker outage", "--by", "ana"])
    assert r.exit_code == 0 and "trading state: HALTED" in r.output
    engine = _engine(settings)
    assert (get_state(engine).state, get_state(engine).set_by) == (TradingState.HALTED, "ana")
    r = runner.invoke(app, ["state", "set", "SIDEWAYS", "--reason", "x"])
    assert r.exit_code != 0 and "ACTIVE, REDUCING, HALTED" in r.output
    r = runner.invoke(app, ["state", "set", "ACTIVE"])
    assert r.exit_code != 0  # a reason is required
    r = runner.invoke(app, ["state", "show"])
    assert "broker outage" in r.output and "set" in r.output


def test_breaker_reset_records_who_and_why(settings: Settings) -> None:
    engine = _engine(settings)
    check_daily_loss(engine, "paper", D0, 10_000, settings.risk)
    check_daily_loss(engine, "paper", D0 + dt.timedelta(days=1), 9_000, settings.risk)
    r = runner.invoke(app, ["state", "show"])
    assert "BREAKER TRIPPED" in r.output
    r = runner.invoke(app, ["state", "set", "ACTIVE", "--reason", "go"])
    assert r.exit_code != 0
    assert isinstance(r.exception, Exception) and "stockflow state reset" in str(r.exception)
    r = runner.invoke(app, ["state", "reset", "--reason", "bad print in the data", "--by", "bob"])
    assert r.exit_code == 0 and "trading state: ACTIVE" in r.output
    ev = state_history(engine)[0]
    assert (ev.kind, ev.actor) == ("reset", "bob") and "bad print" in ev.reason


def test_orders_positions_and_reconcile(settings: Settings) -> None:
    engine = _engine(settings)
    b = PaperBroker(engine, settings.broker)
    b.process_bars(bars_frame(D0, PRICES))
    req = OrderRequest(
        client_order_id="cli-1", symbol="AAPL", side="buy", qty=3, reference_price=100, reason="signal"
    )
    submit_order(engine, b, req, run_id="r")
    r = runner.invoke(app, ["orders", "--open"])
    assert r.exit_code == 0 and "cli-1" in r.output and "new" in r.output
    b.process_bars(bars_frame(D0 + dt.timedelta(days=1), PRICES))
    r = runner.invoke(app, ["reconcile"])
    assert r.exit_code == 0 and "1 fills applied" in r.output
    r = runner.invoke(app, ["positions"])
    assert r.exit_code == 0 and "AAPL" in r.output and "(ledger      3)" in r.output
    assert "stop NONE at broker" in r.output  # issue 10 defect 1: the broker's stop, not the ledger's
    with transaction(engine) as s:  # the ledger intends a stop the broker does not hold
        led = s.scalars(select(LedgerPosition).where(LedgerPosition.symbol == "AAPL")).one()
        led.stop_price = Decimal("97.00")
    r = runner.invoke(app, ["positions"])
    assert "stop NONE at broker (target 97.00)" in r.output
    stop = OrderRequest(
        client_order_id="cli-stop",
        symbol="AAPL",
        side="sell",
        qty=3,
        type="stop",
        stop_price=97,
        intent="exit",
    )
    b.submit(stop)
    r = runner.invoke(app, ["positions"])
    assert "stop 97" in r.output and "NONE" not in r.output and "target" not in r.output
    r = runner.invoke(app, ["orders"])
    assert "filled" in r.output


@pytest.mark.usefixtures("prefect_api")
def test_kill_switch_flow_sets_the_state_and_cancels_orders(settings: Settings) -> None:
    from flows.kill_switch import kill_switch_flow

    engine = _engine(settings)
    b = PaperBroker(engine, settings.broker)
    b.process_bars(bars_frame(D0, PRICES))
    submit_order(
        engine,
        b,
        OrderRequest(client_order_id="ks-1", symbol="AAPL", side="buy", qty=3, reference_price=100),
        run_id="r",
    )
    out = kill_switch_flow(state="HALTED", reason="market chaos")
    assert out["state"] == "HALTED"
    info = get_state(engine)
    assert info.state is TradingState.HALTED and info.reason == "market chaos"
    assert info.set_by.startswith("prefect:")
    assert out["cancel"]["cancelled"] == ["ks-1"]  # type: ignore[index]
    assert b.open_orders() == []
    assert kill_switch_flow(state="ACTIVE", reason="calm again")["state"] == "ACTIVE"
