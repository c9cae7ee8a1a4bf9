"""Opt-in: the broker contract against YOUR Alpaca paper account (https://paper-api.alpaca.markets).

Skipped (with the reason) unless ``STOCKFLOW_ALPACA_CONTRACT=1`` and keys are in the environment
(``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``, or ``STOCKFLOW_BROKER__ALPACA_*``). Paper only: it never
runs against a live account. It places one limit buy of 1 share far below the market (it cannot fill),
checks Alpaca's duplicate-id answer, cancels it, and reads account, clock, positions, open orders (all
pages), fills and corporate actions. Run it with::

    STOCKFLOW_ALPACA_CONTRACT=1 APCA_API_KEY_ID=... APCA_API_SECRET_KEY=... \\
        .venv/bin/pytest -q tests/trading/test_alpaca_paper_endpoint.py
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest

from stockflow.brokers.alpaca import AlpacaBroker
from stockflow.brokers.base import DuplicateClientOrderIdError
from stockflow.config.credentials import alpaca_keys
from stockflow.config.sections import BrokerSettings
from stockflow.domain.orders import OrderRequest, OrderStatus
from stockflow.errors import ConfigError

SYMBOL = os.environ.get("STOCKFLOW_ALPACA_CONTRACT_SYMBOL", "F")


def _broker() -> AlpacaBroker:
    if os.environ.get("STOCKFLOW_ALPACA_CONTRACT") != "1":
        pytest.skip("opt-in: set STOCKFLOW_ALPACA_CONTRACT=1 (and Alpaca paper keys) to run against Alpaca")
    settings = BrokerSettings(kind="alpaca", alpaca_paper=True)
    try:
        alpaca_keys(settings)
    except ConfigError as err:
        pytest.skip(f"no Alpaca keys in the environment: {err}")
    return AlpacaBroker(settings)


def test_read_side_of_the_contract() -> None:
    b = _broker()
    acct = b.account()
    assert acct.equity > 0 and acct.last_equity is not None
    clock = b.clock()
    assert clock.session is not None
    b.positions()
    orders = b.open_orders()
    assert len({o.broker_order_id for o in orders}) == len(orders) and all(o.is_open for o in orders)
    b.fills(since=dt.datetime.now(dt.UTC) - dt.timedelta(days=7))
    today = clock.timestamp.date()
    b.corporate_actions(today - dt.timedelta(days=30), today)
    assert b.get_order("not-a-uuid") is None and b.get_order(str(uuid.uuid4())) is None


def test_a_limit_order_round_trip_and_a_duplicate_id() -> None:
    b = _broker()
    cid = f"sf-contract-{uuid.uuid4().hex[:12]}"
    req = OrderRequest(
        client_order_id=cid, symbol=SYMBOL, side="buy", qty=1, type="limit", limit_price=1, reference_price=1
    )
    ack = b.submit(req)
    try:
        assert ack.client_order_id == cid and ack.is_open
        with pytest.raises(DuplicateClientOrderIdError):
            b.submit(req)
    finally:
        b.cancel(ack.broker_order_id or "")
    done = b.get_order_by_client_id(cid)
    assert done is not None and done.status in (OrderStatus.CANCELED, OrderStatus.NEW)  # pending_cancel
