"""Fault injection against the fake Alpaca server, through the real alpaca-py client, our adapter and the
idempotent execution layer. Each test names the fault and asserts the outcome in the fault table."""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import Engine, select

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.db.engine import transaction
from stockflow.db.models_trading import OrderRow
from stockflow.domain.orders import OrderRequest, OrderStatus
from stockflow.execution import execute_orders
from stockflow.execution.order_records import ledger_positions
from stockflow.execution.poll import await_orders
from stockflow.execution.reconcile import reconcile
from stockflow.execution.submit import submit_order
from tests.fakes.alpaca_trading import FakeAlpacaTrading


def _req(cid: str, qty: int = 10, symbol: str = "AAPL") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side="buy", qty=qty, reference_price=100)


def _row(engine: Engine, cid: str) -> OrderRow:
    with transaction(engine) as s:
        return s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one()


def _orders_at_broker(fake: FakeAlpacaTrading, cid: str) -> int:
    return sum(1 for o in fake.orders.values() if o["client_order_id"] == cid)


def test_504_after_accept_is_adopted_not_resent(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("accept_then_status", status=504)
    res = submit_order(sqlite_engine, alpaca, _req("f-504"), run_id="r", retry_wait_s=0)
    assert res.outcome == "adopted"
    assert fake_alpaca.count("POST", "/v2/orders") == 1 and _orders_at_broker(fake_alpaca, "f-504") == 1
    row = _row(sqlite_engine, "f-504")
    assert row.status == "filled" and row.broker_order_id == res.order.broker_order_id  # type: ignore[union-attr]
    reconcile(sqlite_engine, alpaca, run_id="r")
    assert [p.qty for p in ledger_positions(sqlite_engine, alpaca.name)] == [10]


def test_504_with_failed_lookup_is_unknown_then_reconcile_resolves(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("accept_then_status", status=504)
    fake_alpaca.inject("status", method="GET", path="/v2/orders:by_client_order_id", status=503)
    results = execute_orders(
        sqlite_engine, alpaca, [_req("f-u1"), _req("f-u2", symbol="MSFT")], run_id="r", retry_wait_s=0
    )
    assert [r.outcome for r in results] == ["unknown", "refused"]  # nothing more after an unknown
    assert _row(sqlite_engine, "f-u1").status == OrderStatus.UNKNOWN.value
    # A new order is refused until reconciliation settles the unknown one.
    assert submit_order(sqlite_engine, alpaca, _req("f-u3", symbol="IBM"), run_id="r").outcome == "refused"
    rep = reconcile(sqlite_engine, alpaca, run_id="r")
    assert ("f-u1", "unknown", "filled") in rep.resolved
    assert _orders_at_broker(fake_alpaca, "f-u1") == 1 and fake_alpaca.count("POST", "/v2/orders") == 1
    assert (
        submit_order(sqlite_engine, alpaca, _req("f-u3", symbol="IBM", qty=1), run_id="r").outcome
        == "submitted"
    )


def test_429_burst_is_retried_with_the_same_id(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("status", status=429, times=3, body={"message": "too many requests"})
    res = submit_order(sqlite_engine, alpaca, _req("f-429"), run_id="r", retry_wait_s=0.01)
    assert res.outcome == "submitted"
    posts = [b for m, p, b in fake_alpaca.requests if m == "POST" and p == "/v2/orders"]
    assert len(posts) == 4 and {b["client_order_id"] for b in posts if b} == {"f-429"}
    assert _orders_at_broker(fake_alpaca, "f-429") == 1
    assert _row(sqlite_engine, "f-429").submit_attempts == 4


def test_429_beyond_the_retries_is_not_sent(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("status", status=429, times=10)
    res = submit_order(sqlite_engine, alpaca, _req("f-429x"), run_id="r", max_retries=2, retry_wait_s=0.01)
    assert res.outcome == "retry_exhausted"
    assert _row(sqlite_engine, "f-429x").status == OrderStatus.NOT_SENT.value
    assert _orders_at_broker(fake_alpaca, "f-429x") == 0


def test_422_duplicate_is_adopted(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    alpaca.submit(_req("f-dup"))  # reached the broker earlier; our database never heard back
    res = submit_order(sqlite_engine, alpaca, _req("f-dup"), run_id="r")
    assert res.outcome == "adopted" and _orders_at_broker(fake_alpaca, "f-dup") == 1
    assert _row(sqlite_engine, "f-dup").broker_order_id == res.order.broker_order_id  # type: ignore[union-attr]


def test_403_insufficient_buying_power_is_rejected(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    res = submit_order(sqlite_engine, alpaca, _req("f-403", qty=500), run_id="r")
    assert res.outcome == "rejected" and "insufficient buying power" in (res.error or "")
    row = _row(sqlite_engine, "f-403")
    assert row.status == "rejected" and "40310000" in (row.error or "")
    assert fake_alpaca.count("POST", "/v2/orders") == 1  # a rejection is not retried


def test_partial_fill_then_cancel_tracks_the_partial(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("partial_then_cancel", qty=4)
    res = submit_order(sqlite_engine, alpaca, _req("f-part"), run_id="r")
    assert res.order is not None and res.order.status is OrderStatus.CANCELED and res.order.filled_qty == 4
    rep = reconcile(sqlite_engine, alpaca, run_id="r")
    assert [f.qty for f in rep.fills_applied] == [Decimal(4)]
    row = _row(sqlite_engine, "f-part")
    assert (row.status, row.filled_qty) == ("canceled", Decimal(4))
    assert [p.qty for p in ledger_positions(sqlite_engine, alpaca.name)] == [4]
    reconcile(sqlite_engine, alpaca, run_id="r2")  # fills are applied once
    assert [p.qty for p in ledger_positions(sqlite_engine, alpaca.name)] == [4]


def test_partial_fill_that_hangs_is_cancelled_by_polling(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("partial", qty=3)
    res = submit_order(sqlite_engine, alpaca, _req("f-hangfill"), run_id="r")
    assert res.order is not None and res.order.status is OrderStatus.PARTIALLY_FILLED
    [final] = await_orders(sqlite_engine, alpaca, ["f-hangfill"], timeout_s=0.3, interval_s=0.1, run_id="r")
    assert final.status is OrderStatus.CANCELED and final.filled_qty == 3
    assert fake_alpaca.count("DELETE", f"/v2/orders/{final.broker_order_id}") == 1
    assert _row(sqlite_engine, "f-hangfill").status == "canceled"
    assert [p.qty for p in ledger_positions(sqlite_engine, alpaca.name)] == [3]


def test_rejected_order_is_recorded(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("reject_async")
    submit_order(sqlite_engine, alpaca, _req("f-rej"), run_id="r")
    [final] = await_orders(sqlite_engine, alpaca, ["f-rej"], timeout_s=1, interval_s=0.05)
    assert final.status is OrderStatus.REJECTED
    assert _row(sqlite_engine, "f-rej").status == "rejected"
    assert ledger_positions(sqlite_engine, alpaca.name) == []


def test_hung_connection_after_accept_times_out_and_is_adopted(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("hang", seconds=3.0, accept=True)
    t0 = time.perf_counter()
    res = submit_order(sqlite_engine, alpaca, _req("f-hang"), run_id="r")
    elapsed = time.perf_counter() - t0
    assert res.outcome == "adopted" and elapsed < 2.5  # 1 s client timeout, not the 3 s hang
    assert fake_alpaca.count("POST", "/v2/orders") == 1 and _orders_at_broker(fake_alpaca, "f-hang") == 1


def test_hung_connection_before_accept_is_unknown_and_never_resent_under_a_new_id(
    sqlite_engine: Engine, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.inject("hang", seconds=1.5, accept=False)  # the order arrives after we gave up
    res = submit_order(sqlite_engine, alpaca, _req("f-late"), run_id="r")
    assert res.outcome == "unknown"
    time.sleep(0.8)  # the broker processes the late request
    rep = reconcile(sqlite_engine, alpaca, run_id="r")
    assert ("f-late", "unknown", "filled") in rep.resolved
    assert fake_alpaca.count("POST", "/v2/orders") == 1 and len(fake_alpaca.orders) == 1
    assert [p.qty for p in ledger_positions(sqlite_engine, alpaca.name)] == [10]


def test_unauthorized_key_is_a_clear_rejection_without_the_key(fake_alpaca: FakeAlpacaTrading) -> None:
    from stockflow.errors import RejectedError
    from tests.trading.conftest import alpaca_settings

    bad = AlpacaBroker(
        alpaca_settings(fake_alpaca.url).model_copy(
            update={"alpaca_secret_key": __import__("pydantic").SecretStr("wrong-secret-value")}
        )
    )
    try:
        bad.account()
    except RejectedError as err:
        assert "not authorized" in str(err) and "wrong-secret-value" not in str(err)
    else:
        raise AssertionError("expected RejectedError")


def test_market_closed_for_long_refuses_before_sending(
    fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    import datetime as dt

    from stockflow.errors import RejectedError

    fake_alpaca.market_open = False
    fake_alpaca.next_open = dt.datetime(2024, 1, 10, 14, 30, tzinfo=dt.UTC)  # a week away
    try:
        alpaca.submit(_req("f-closed"))
    except RejectedError as err:
        assert "market closed until 2024-01-10" in str(err)
    else:
        raise AssertionError("expected RejectedError")
    assert fake_alpaca.count("POST", "/v2/orders") == 0


def test_clock_that_disagrees_with_the_calendar_is_refused(
    alpaca: AlpacaBroker, fake_alpaca: FakeAlpacaTrading
) -> None:
    import datetime as dt

    import pytest

    from stockflow.errors import RejectedError

    fake_alpaca.market_open = False
    fake_alpaca.next_open = dt.datetime(2024, 1, 6, 14, 30, tzinfo=dt.UTC)  # a Saturday
    with pytest.raises(RejectedError, match="disagree"):
        alpaca.clock()


def test_queued_order_while_closed_overnight_is_sent(
    alpaca: AlpacaBroker, fake_alpaca: FakeAlpacaTrading
) -> None:
    fake_alpaca.market_open = False  # after the close: a DAY order waits for the next open
    o = alpaca.submit(_req("f-night"))
    assert o.status is OrderStatus.NEW and o.filled_qty == 0


def test_live_endpoint_needs_the_second_confirmation() -> None:
    import pytest

    from stockflow.config.sections import BrokerSettings
    from stockflow.errors import ConfigError

    with pytest.raises(ValueError, match="live_trading_confirmed"):
        BrokerSettings(kind="alpaca", alpaca_paper=False)
    unchecked = BrokerSettings.model_construct(
        kind="alpaca", alpaca_paper=False, live_trading_confirmed=False
    )
    with pytest.raises(ConfigError, match="live_trading_confirmed"):
        AlpacaBroker(unchecked)
