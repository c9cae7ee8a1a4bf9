"""The Alpaca adapter against the wire-level fake: issue 10 defects 2 (keys), 6 (malformed ids, paging,
the server's open filter, 429 resets) and the one order-status table."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from alpaca.trading.enums import OrderStatus as AlpacaStatus
from sqlalchemy import Engine

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.alpaca_status import ALPACA_STATUS, map_status
from stockflow.config.credentials import alpaca_keys
from stockflow.config.sections import BrokerSettings
from stockflow.domain.orders import OrderRequest, OrderStatus
from stockflow.errors import ConfigError
from stockflow.execution import submit as submit_mod
from stockflow.execution.submit import submit_order
from tests.fakes.alpaca_trading import _OPEN, API_KEY, SECRET_KEY, FakeAlpacaTrading


def test_apca_environment_keys_reach_the_broker(
    fake_alpaca: FakeAlpacaTrading, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 2: the README's APCA_API_KEY_ID / APCA_API_SECRET_KEY were read by the data source only."""
    monkeypatch.setenv("APCA_API_KEY_ID", API_KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET_KEY)
    broker = AlpacaBroker(BrokerSettings(kind="alpaca", alpaca_url_override=fake_alpaca.url))
    assert broker.account().cash == Decimal(10_000)


def test_key_resolution_order_and_clear_errors() -> None:
    both = BrokerSettings(alpaca_api_key="s-key", alpaca_secret_key="s-secret")
    env = {"APCA_API_KEY_ID": "e-key", "APCA_API_SECRET_KEY": "e-secret"}
    keys = alpaca_keys(both, env=env)
    assert (keys.key_id, keys.origin) == ("s-key", "settings") and "s-secret" not in repr(keys)
    assert alpaca_keys(BrokerSettings(), env=env).origin == "env"
    with pytest.raises(ConfigError, match="APCA_API_SECRET_KEY is not set"):
        alpaca_keys(BrokerSettings(), env={"APCA_API_KEY_ID": "e-key"})
    with pytest.raises(ConfigError, match="needs API keys: set APCA_API_KEY_ID"):
        alpaca_keys(BrokerSettings(), env={})


def test_malformed_order_id_is_unknown_not_a_crash(alpaca: AlpacaBroker) -> None:
    """Defect 6: alpaca-py raised ValueError for an id that is not a UUID."""
    assert alpaca.get_order("not-a-uuid") is None
    assert alpaca.get_order(str(uuid.uuid4())) is None


def test_open_orders_pages_past_500_and_does_not_trust_the_server_filter(
    fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    """Defect 6: the adapter stopped at 500 and took every order the server called open."""
    with fake_alpaca.lock:
        for i in range(1203):
            o = fake_alpaca._new_order(
                {
                    "symbol": "AAPL",
                    "side": "sell",
                    "qty": "1",
                    "type": "limit",
                    "limit_price": "500",
                    "time_in_force": "gtc",
                    "client_order_id": f"lim-{i}",
                }
            )
            if i % 100 == 0:
                o["status"] = "filled"  # final, yet answered to status=open below
    fake_alpaca.open_filter_broken = True
    got = alpaca.open_orders()
    assert len(got) == 1203 - 13 and len({o.client_order_id for o in got}) == len(got)
    assert all(o.status is OrderStatus.NEW for o in got)


def test_429_waits_for_the_rate_limit_reset(
    fake_alpaca: FakeAlpacaTrading,
    alpaca: AlpacaBroker,
    sqlite_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defect 6: retries ignored X-Ratelimit-Reset and came back after the client's own short backoff."""
    waits: list[float] = []
    monkeypatch.setattr(submit_mod.time, "sleep", waits.append)
    fake_alpaca.ratelimit_reset_s = 3.0
    fake_alpaca.inject("status", status=429, times=1, body={"message": "too many requests"})
    req = OrderRequest(client_order_id="rl-1", symbol="AAPL", side="buy", qty=1, reference_price=100)
    res = submit_order(sqlite_engine, alpaca, req, run_id="r", retry_wait_s=0.01)
    assert res.outcome == "submitted"
    assert len(waits) == 1 and 2.0 <= waits[0] <= 10.0


def test_every_alpaca_status_is_in_the_one_table() -> None:
    assert set(ALPACA_STATUS) == {s.value for s in AlpacaStatus}
    assert {k for k, (_, kind) in ALPACA_STATUS.items() if kind == "working"} == _OPEN | {"new"}
    with pytest.raises(ValueError, match="unknown Alpaca order status 'teleported'"):
        map_status("teleported")


@pytest.mark.parametrize("status", sorted(s.value for s in AlpacaStatus))
def test_each_status_through_the_wire(
    status: str, fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    ack = alpaca.submit(
        OrderRequest(
            client_order_id=f"st-{status}", symbol="AAPL", side="buy", qty=2, type="limit", limit_price=90
        )
    )
    with fake_alpaca.lock:
        o = fake_alpaca.orders[ack.broker_order_id or ""]
        o["status"] = status
        o["filled_qty"] = Decimal(1) if status not in ("new", "accepted", "pending_new") else Decimal(0)
    got = alpaca.get_order(ack.broker_order_id or "")
    assert got is not None
    ours, kind = ALPACA_STATUS[status]
    expected = OrderStatus.PARTIALLY_FILLED if kind == "working" and got.filled_qty > 0 else ours
    assert got.status is expected and got.is_open == (kind == "working")


def test_account_carries_the_brokers_last_equity(
    fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker
) -> None:
    fake_alpaca.last_equity = Decimal("9876.5")
    assert alpaca.account().last_equity == Decimal("9876.5")


def test_the_fake_calendar_skips_holidays(fake_alpaca: FakeAlpacaTrading, alpaca: AlpacaBroker) -> None:
    fake_alpaca.now = dt.datetime(2024, 1, 12, 22, 0, tzinfo=dt.UTC)  # Friday before MLK day
    fake_alpaca.market_open = False
    clock = alpaca.clock()
    assert clock.next_open is not None and clock.next_open.date() == dt.date(2024, 1, 16)
    assert clock.session == dt.date(2024, 1, 12)
