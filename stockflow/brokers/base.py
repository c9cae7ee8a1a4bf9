"""The ``Broker`` protocol every adapter implements, and what its errors mean.

Errors raised by every method (from :mod:`stockflow.errors`):

- ``RetryableError``: nothing happened (429 rate limit, connection refused, 5xx on a read); the same
  call may be repeated. For ``submit`` it is safe to resend with the SAME client_order_id.
- ``RejectedError``: the broker refused (insufficient buying power, unknown symbol, bad key); final.
- ``OutcomeUnknownError``: ``submit`` may or may not have created the order (timeout, 5xx after the
  POST). Never resubmit under a new id; look it up with ``get_order_by_client_id`` / reconcile.
- ``DuplicateClientOrderIdError``: ``submit`` with a client_order_id the broker already has (Alpaca
  answers 422, code 40010001): the order was already submitted; fetch it and adopt it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stockflow.domain.corporate import CorporateAction
from stockflow.domain.orders import Account, Fill, Order, OrderRequest, Position
from stockflow.errors import StockflowError


class DuplicateClientOrderIdError(StockflowError):
    """The broker already has an order with this client_order_id: it was submitted before."""

    def __init__(self, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(f"client_order_id {client_order_id} was already submitted to the broker")


@dataclass(frozen=True, slots=True)
class MarketClock:
    """The broker's market clock: whether the market is open now and the next open/close."""

    timestamp: dt.datetime
    is_open: bool
    next_open: dt.datetime | None
    next_close: dt.datetime | None
    session: dt.date | None = None  # the current (or, when closed, the last) trading session


@runtime_checkable
class Broker(Protocol):
    """What the execution layer needs from a broker. Every adapter behaves the same way (one contract
    test suite runs against each)."""

    #: Stable name of the account this broker trades (``paper``, ``alpaca-paper``, ``alpaca-live``);
    #: our ledger, orders and fills are kept per broker name.
    name: str
    #: True when protective stop orders can rest at the broker.
    supports_stop_orders: bool

    def account(self) -> Account:
        """Cash, equity and buying power now."""
        ...

    def positions(self) -> list[Position]:
        """Every non-zero position."""
        ...

    def open_orders(self) -> list[Order]:
        """Orders that may still fill."""
        ...

    def submit(self, request: OrderRequest) -> Order:
        """Send one order under ``request.client_order_id`` and return the broker's acknowledgement."""
        ...

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client_order_id, or None when the broker never received it."""
        ...

    def get_order(self, broker_order_id: str) -> Order | None:
        """The order with this broker id, or None when unknown."""
        ...

    def cancel(self, broker_order_id: str) -> None:
        """Ask to cancel an order. Cancelling an order that is already final is not an error."""
        ...

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """Executions at or after ``since`` (all when None), oldest first. Each has a unique
        ``execution_id``; applying them is the caller's job (once, keyed by that id)."""
        ...

    def clock(self) -> MarketClock:
        """The market clock as the broker sees it."""
        ...

    def corporate_actions(self, since: dt.date, until: dt.date) -> list[CorporateAction]:
        """Splits and cash dividends with an ex-date in [since, until] (reconciliation applies them)."""
        ...
