"""Issue 10 defect 3: P&L baselines come from the broker's own figures (Alpaca's last_equity), never
from the paper broker's configured initial cash, and a deposit is not a return."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.paper import PaperBroker
from stockflow.config import load_settings
from stockflow.config.sections import BrokerSettings
from stockflow.domain.orders import Account
from stockflow.execution.pnl import pnl_baseline
from stockflow.pipeline.session import SessionCheck
from stockflow.pipeline.trade_records import start_trade_run
from tasks.trading import RunContext, snapshot_task
from tests.fakes.alpaca_trading import FakeAlpacaTrading
from tests.trading.conftest import D0, PRICES, alpaca_settings, bars_frame


def _snap(tmp_path: Path, engine: Engine, broker: object, session: dt.date) -> dict:
    settings = load_settings(data_dir=tmp_path / "data", reports_dir=tmp_path / "reports")
    run = start_trade_run(engine, flow_run_id=None, mode="auto", signal_source="test")
    check = SessionCheck(expected=session, latest={}, fresh=(), stale={}, ok=True, message="")
    ctx = RunContext(
        settings=settings,
        engine=engine,
        broker=broker,  # type: ignore[arg-type]
        trade_run_id=run,
        flow_run_id=None,
        mode="auto",
        run_id="pnl-test",
        session_check=check,
    )
    return snapshot_task.fn(ctx)


def test_an_untouched_alpaca_account_made_no_money(tmp_path: Path, sqlite_engine: Engine) -> None:
    """The report: 'daily P&L $+91,746.70, total return +917%' on an account that had not traded."""
    with FakeAlpacaTrading(cash=101_746.70, prices=PRICES) as fake:
        broker = AlpacaBroker(alpaca_settings(fake.url))
        first = _snap(tmp_path, sqlite_engine, broker, dt.date(2024, 1, 3))
        assert first["daily_pnl"] == pytest.approx(0.0) and first["total_return"] == pytest.approx(0.0)

        fake.next_day()
        fake.deposit(5_000)  # money moved in: not a return
        second = _snap(tmp_path, sqlite_engine, broker, dt.date(2024, 1, 4))
        assert second["equity"] == pytest.approx(106_746.70)
        assert second["daily_pnl"] == pytest.approx(0.0) and second["daily_return"] == pytest.approx(0.0)


def test_paper_starts_from_its_opening_balance(tmp_path: Path, sqlite_engine: Engine) -> None:
    b = PaperBroker(sqlite_engine, BrokerSettings(initial_cash=20_000, slippage_bps=0))
    b.process_bars(bars_frame(D0, PRICES))
    snap = _snap(tmp_path, sqlite_engine, b, D0)
    assert snap["daily_pnl"] == pytest.approx(0.0) and snap["total_return"] == pytest.approx(0.0)


def test_baseline_sources() -> None:
    acct = Account(cash=100, equity=110, buying_power=100, last_equity=105)
    b = pnl_baseline(acct, [], D0)
    assert (b.prev_equity, b.start_equity, b.source) == (105.0, 105.0, "broker:last_equity")
    hist = [(D0 - dt.timedelta(days=2), 90.0), (D0 - dt.timedelta(days=1), 100.0)]
    plain = Account(cash=100, equity=110, buying_power=100)
    b = pnl_baseline(plain, hist, D0, opening_balance=50)
    assert (b.prev_equity, b.start_equity, b.source) == (100.0, 90.0, "snapshot")
    b = pnl_baseline(plain, [], D0)
    assert (b.prev_equity, b.source) == (110.0, "first sight")
