"""Crash tests: a real trading process is killed (os._exit at a failpoint, or SIGKILL while its POST
hangs) after the database write but before the POST, and after the POST but before the acknowledgement.
After a restart (reconcile, then the same plan again; done here in the test process, the crashed one is
gone) there is exactly one order and the right position."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
import time

import pytest
from sqlalchemy import Engine, select

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.base import Broker
from stockflow.brokers.paper import PaperBroker
from stockflow.config.sections import BrokerSettings
from stockflow.db.engine import make_engine, transaction
from stockflow.db.models_trading import OrderRow, PaperOrderRow
from stockflow.domain.orders import OrderRequest
from stockflow.execution.lock import run_lock
from stockflow.execution.order_records import ledger_positions
from stockflow.execution.reconcile import reconcile
from stockflow.execution.submit import ExecutionResult, submit_order
from tests.fakes.alpaca_trading import FakeAlpacaTrading
from tests.trading.conftest import D0, PRICES, alpaca_settings, bars_frame

CID = "sf-crash-AAPL-b-entry"


def _child(args: dict, failpoint: str | None) -> None:
    """The trading process: its own engine and broker client, lock, reconcile, send one order."""
    if failpoint:
        os.environ["STOCKFLOW_FAILPOINTS"] = failpoint
    engine = make_engine(args["db_url"])
    broker: Broker
    if args["broker"] == "paper":
        broker = PaperBroker(engine, BrokerSettings(slippage_bps=0))
    else:
        broker = AlpacaBroker(alpaca_settings(args["url"], http_timeout_s=30))
    req = OrderRequest(
        client_order_id=args["cid"],
        symbol=args["symbol"],
        side="buy",
        qty=args["qty"],
        reference_price=args["price"],
        reason="crash test",
    )
    with run_lock(engine, holder="crash-worker"):
        reconcile(engine, broker, run_id="crash-run")
        submit_order(engine, broker, req, run_id="crash-run")
    os._exit(0)


def _worker(args: dict, failpoint: str | None = None) -> multiprocessing.process.BaseProcess:
    # A forked child (a real process: os._exit and SIGKILL end it for good) starts in milliseconds,
    # where a fresh interpreter would spend seconds importing.
    p = multiprocessing.get_context("fork").Process(target=_child, args=(args, failpoint), daemon=True)
    p.start()
    return p


def _run(args: dict, failpoint: str | None = None) -> int:
    p = _worker(args, failpoint)
    p.join(timeout=120)
    assert p.exitcode is not None
    return p.exitcode


def restart(engine: Engine, broker: Broker, args: dict) -> ExecutionResult:
    """What the restarted process does: take the lock (the dead holder's is taken over), reconcile, and
    run the same plan (same client_order_id) again."""
    req = OrderRequest(
        client_order_id=args["cid"],
        symbol=args["symbol"],
        side="buy",
        qty=args["qty"],
        reference_price=args["price"],
    )
    with run_lock(engine, holder="restarted"):
        reconcile(engine, broker, run_id="crash-run")
        return submit_order(engine, broker, req, run_id="crash-run")


def _our_rows(engine: Engine) -> list[OrderRow]:
    with transaction(engine) as s:
        return list(s.scalars(select(OrderRow)).all())


@pytest.mark.parametrize("failpoint", ["submit.after_db_write", "submit.after_broker_ack"])
def test_paper_crash_then_restart_gives_one_order(sqlite_engine: Engine, failpoint: str) -> None:
    broker = PaperBroker(sqlite_engine, BrokerSettings(slippage_bps=0))
    broker.process_bars(bars_frame(D0, PRICES))
    args = {
        "db_url": sqlite_engine.url.render_as_string(hide_password=False),
        "broker": "paper",
        "cid": CID,
        "symbol": "AAPL",
        "qty": 7,
        "price": 100,
    }

    code = _run(args, failpoint)
    assert code == 137  # died at the failpoint
    [row] = _our_rows(sqlite_engine)
    assert row.status == "pending_submit"  # written before the POST, never acknowledged
    with transaction(sqlite_engine) as s:
        at_broker = len(s.scalars(select(PaperOrderRow)).all())
    assert at_broker == (0 if failpoint == "submit.after_db_write" else 1)

    result = restart(sqlite_engine, broker, args)  # reconcile, then the same plan again
    assert result.outcome == ("submitted" if failpoint == "submit.after_db_write" else "already_submitted")
    with transaction(sqlite_engine) as s:
        assert [o.client_order_id for o in s.scalars(select(PaperOrderRow))] == [CID]
    broker.process_bars(bars_frame(D0.replace(day=3), PRICES))
    reconcile(sqlite_engine, broker, run_id="after")
    assert [(p.symbol, p.qty) for p in broker.positions()] == [("AAPL", 7)]
    assert [(p.symbol, p.qty) for p in ledger_positions(sqlite_engine, "paper")] == [("AAPL", 7)]
    [row] = _our_rows(sqlite_engine)
    assert row.status == "filled" and row.filled_qty == 7


@pytest.mark.parametrize("how", ["submit.after_db_write", "killed_during_post"])
def test_alpaca_crash_then_restart_gives_one_order(sqlite_engine: Engine, how: str) -> None:
    with FakeAlpacaTrading(prices=PRICES) as fake:
        args = {
            "db_url": sqlite_engine.url.render_as_string(hide_password=False),
            "broker": "alpaca",
            "url": fake.url,
            "cid": CID,
            "symbol": "AAPL",
            "qty": 7,
            "price": 100,
            "timeout": 30,
        }
        if how == "killed_during_post":
            fake.inject("hang", seconds=20, accept=True)  # the broker accepts, the answer never comes
            p = _worker(args)
            deadline = time.monotonic() + 60
            while fake.count("POST", "/v2/orders") == 0:
                assert time.monotonic() < deadline and p.is_alive()
                time.sleep(0.02)
            p.kill()  # SIGKILL while waiting for the acknowledgement
            p.join(timeout=30)
            assert p.exitcode == -9
            assert len(fake.orders) == 1
        else:
            code = _run(args, how)
            assert code == 137 and fake.count("POST", "/v2/orders") == 0
        [row] = _our_rows(sqlite_engine)
        assert row.status == "pending_submit" and row.broker_order_id is None

        broker = AlpacaBroker(alpaca_settings(fake.url))
        result = restart(sqlite_engine, broker, args)
        assert result.outcome == ("submitted" if how == "submit.after_db_write" else "already_submitted")
        assert [o["client_order_id"] for o in fake.orders.values()] == [CID]
        reconcile(sqlite_engine, broker, run_id="after")
        assert [(p.symbol, p.qty) for p in broker.positions()] == [("AAPL", 7)]
        assert [(p.symbol, p.qty) for p in ledger_positions(sqlite_engine, broker.name)] == [("AAPL", 7)]
        [row] = _our_rows(sqlite_engine)
        assert row.status == "filled" and row.broker_order_id == next(iter(fake.orders))
