"""Every Alpaca order status, mapped explicitly to ours in ONE table.

Alpaca's statuses (https://docs.alpaca.markets/docs/orders-at-alpaca#order-lifecycle) and what they
mean for us:

- working, may still fill: ``new``, ``accepted``, ``pending_new``, ``accepted_for_bidding``,
  ``pending_review``, ``held`` (e.g. a bracket leg waiting for its parent), ``pending_cancel`` (a
  cancel was asked for, it can still fill), ``pending_replace``, ``done_for_day`` (no more fills today,
  working again tomorrow), ``stopped`` (a fill is guaranteed, not yet happened), ``suspended`` (not
  tradable now, not final), ``calculated`` (done for the day, settlement pending; final only once Alpaca
  says ``filled``), ``partially_filled``;
- final: ``filled``, ``canceled``, ``expired``, ``rejected``, ``replaced`` (superseded by the order
  that replaced it: the old id never fills again).

A working order that has filled something is ``partially_filled`` for us. A cancelled (or expired)
order may have filled part before, and a fill can still be reported after the cancel
(cancel-then-filled): the fills are applied by execution id whatever the status says, and
``filled_qty`` on the order is what counts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from stockflow.domain.orders import OrderStatus

Kind = Literal["working", "final"]

#: Alpaca status -> (our status when nothing has filled yet, working or final).
ALPACA_STATUS: dict[str, tuple[OrderStatus, Kind]] = {
    "new": (OrderStatus.NEW, "working"),
    "accepted": (OrderStatus.NEW, "working"),
    "pending_new": (OrderStatus.NEW, "working"),
    "accepted_for_bidding": (OrderStatus.NEW, "working"),
    "pending_review": (OrderStatus.NEW, "working"),
    "held": (OrderStatus.NEW, "working"),
    "pending_cancel": (OrderStatus.NEW, "working"),
    "pending_replace": (OrderStatus.NEW, "working"),
    "done_for_day": (OrderStatus.NEW, "working"),
    "stopped": (OrderStatus.NEW, "working"),
    "suspended": (OrderStatus.NEW, "working"),
    "calculated": (OrderStatus.NEW, "working"),
    "partially_filled": (OrderStatus.PARTIALLY_FILLED, "working"),
    "filled": (OrderStatus.FILLED, "final"),
    "canceled": (OrderStatus.CANCELED, "final"),
    "expired": (OrderStatus.EXPIRED, "final"),
    "rejected": (OrderStatus.REJECTED, "final"),
    "replaced": (OrderStatus.CANCELED, "final"),
}


def map_status(status: str, filled_qty: Decimal = Decimal(0)) -> OrderStatus:
    """Our status for an Alpaca status; an unknown status is an error, never guessed."""
    try:
        ours, kind = ALPACA_STATUS[status]
    except KeyError:
        raise ValueError(f"unknown Alpaca order status {status!r}") from None
    if kind == "working" and filled_qty > 0:
        return OrderStatus.PARTIALLY_FILLED
    return ours
