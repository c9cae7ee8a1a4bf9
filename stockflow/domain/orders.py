"""Immutable order, fill, position and account types shared by risk, brokers, execution and pipeline.

Quantities and money are :class:`~decimal.Decimal` so that P&L and position arithmetic is exact: fills
applied in any order give the same position and cash. The types are frozen pydantic models: they accept
``int``, ``float``, ``str`` or ``Decimal`` (floats through ``str``, so ``0.1`` stays ``0.1``), keyword
arguments only, and reject NaN/inf, unknown fields and non-positive quantities/prices.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Number = int | float | str | Decimal

ZERO = Decimal(0)


def to_decimal(value: Number | None, *, name: str = "value") -> Decimal:
    """Convert a number to ``Decimal`` exactly as written (floats via ``repr``); reject NaN/inf."""
    if value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not bool")
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        d = Decimal(repr(value))
    else:
        d = Decimal(str(value).strip())
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return d


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys (position grows), -1 for sells."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The side that closes a position opened with this side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """Order types supported by every broker adapter."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class TimeInForce(StrEnum):
    """How long an order stays working."""

    DAY = "day"
    GTC = "gtc"


class OrderStatus(StrEnum):
    """Lifecycle of an order, from our database row to the broker's final word.

    ``pending_submit``: written to our database, not yet acknowledged by the broker (may or may not have
    reached it). ``unknown``: the submit's outcome is unknown (timeout/5xx); reconcile before anything else.
    """

    PENDING_SUBMIT = "pending_submit"
    UNKNOWN = "unknown"
    NEW = "new"  # accepted by the broker, working
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"  # written locally, never reached the broker, abandoned

    @property
    def is_open(self) -> bool:
        """True while the order may still fill (or its fate is not known yet)."""
        return self in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        """True when nothing will happen to the order any more."""
        return not self.is_open


OPEN_STATUSES = frozenset(
    {OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED}
)


class TradingState(StrEnum):
    """The persisted kill switch: ACTIVE trades, REDUCING only exits, HALTED sends nothing but cancels."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderRequest(_Frozen):
    """What we ask a broker to do. ``client_order_id`` is deterministic (see ``brokers.ids``).

    ``reference_price`` is the price the decision was made on (last close): used for sizing, risk
    limits and affordability checks of market orders. ``reason`` says why the order exists (signal,
    stop, exit, flatten...). ``intent`` is ``entry`` (opens/increases risk) or ``exit`` (reduces it).
    """

    client_order_id: str = Field(min_length=1, max_length=128)
    symbol: str = Field(min_length=1, max_length=16)
    side: Side
    qty: Decimal = Field(gt=0)
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = Field(None, gt=0)
    stop_price: Decimal | None = Field(None, gt=0)
    reference_price: Decimal | None = Field(None, gt=0)
    time_in_force: TimeInForce = TimeInForce.DAY
    reason: str = ""
    intent: Literal["entry", "exit"] = "entry"

    @model_validator(mode="after")
    def _prices_match_type(self) -> OrderRequest:
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError(f"{self.symbol}: limit order needs a limit_price")
        if self.type is OrderType.STOP and self.stop_price is None:
            raise ValueError(f"{self.symbol}: stop order needs a stop_price")
        return self

    def with_qty(self, qty: Number) -> OrderRequest:
        """The same request for another quantity (used when risk sizes an order down)."""
        return self.model_copy(update={"qty": to_decimal(qty, name="qty")})

    @property
    def price_for_risk(self) -> Decimal | None:
        """The best price estimate for notional/risk: limit, else stop, else reference."""
        return self.limit_price or self.stop_price or self.reference_price

    def notional(self) -> Decimal | None:
        """qty x price_for_risk, or None when no price is known."""
        p = self.price_for_risk
        return None if p is None else self.qty * p


class Order(_Frozen):
    """An order as the broker reports it (or as our database knows it)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal = Field(ge=0)
    type: OrderType
    status: OrderStatus
    broker_order_id: str | None = None
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    submitted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    reject_reason: str | None = None

    @property
    def is_open(self) -> bool:
        """True while the order may still fill."""
        return self.status.is_open

    @property
    def remaining_qty(self) -> Decimal:
        """Quantity not filled yet."""
        return self.qty - self.filled_qty


class Fill(_Frozen):
    """One execution. ``execution_id`` is unique per broker: fills are applied once, keyed by it."""

    execution_id: str = Field(min_length=1)
    broker_order_id: str
    symbol: str
    side: Side
    qty: Decimal = Field(gt=0)
    price: Decimal = Field(gt=0)
    timestamp: dt.datetime
    commission: Decimal = Field(ZERO, ge=0)
    client_order_id: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("fill timestamp must be timezone-aware")
        return v

    @property
    def signed_qty(self) -> Decimal:
        """+qty for buys, -qty for sells."""
        return self.qty * self.side.sign

    @property
    def cash_flow(self) -> Decimal:
        """Change of cash caused by this fill (buys cost price x qty + commission)."""
        return -self.signed_qty * self.price - self.commission


class Position(_Frozen):
    """A holding. ``qty`` is signed (negative = short)."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    current_price: Decimal | None = None

    @property
    def market_value(self) -> Decimal:
        """qty x current price (entry price when no current price is known)."""
        return self.qty * (self.current_price if self.current_price is not None else self.avg_entry_price)

    @property
    def unrealized_pnl(self) -> Decimal:
        """(current - entry) x qty; zero without a current price."""
        if self.current_price is None:
            return ZERO
        return (self.current_price - self.avg_entry_price) * self.qty


class Account(_Frozen):
    """Cash, equity (cash + market value of positions) and buying power."""

    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    currency: str = "USD"
    status: str = "ACTIVE"
    trading_blocked: bool = False
    #: The broker's equity at the previous session's close (Alpaca's ``last_equity``): the baseline of
    #: today's P&L. None when the broker does not say.
    last_equity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Book:
    """Position and cash that result from a sequence of fills (average-cost accounting).

    ``qty`` and ``cash`` do not depend on the order the fills are applied in; ``cost_basis`` does only
    when a position is reduced (realized P&L under average cost), never for a sequence of buys.
    """

    qty: Decimal = ZERO
    cost_basis: Decimal = ZERO
    cash: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    commissions: Decimal = ZERO

    @property
    def avg_entry_price(self) -> Decimal:
        """cost_basis / qty, or zero when flat."""
        return ZERO if self.qty == 0 else self.cost_basis / self.qty

    def apply(self, fill: Fill) -> Book:
        """The book after one more fill."""
        return apply_fill(self, fill.side, fill.qty, fill.price, fill.commission)


def apply_fill(book: Book, side: Side, qty: Decimal, price: Decimal, commission: Decimal = ZERO) -> Book:
    """Average-cost position accounting for one fill (long or short, crossing through zero)."""
    signed = qty * Side(side).sign
    cash = book.cash - signed * price - commission
    q0, basis, realized = book.qty, book.cost_basis, book.realized_pnl
    if q0 == 0 or (q0 > 0) == (signed > 0):
        # Opening or adding: cost basis grows by what was paid.
        return Book(signed + q0, basis + signed * price, cash, realized, book.commissions + commission)
    new_qty = q0 + signed
    if new_qty == 0:
        new_basis = ZERO
    elif (new_qty > 0) == (q0 > 0):
        new_basis = basis * new_qty / q0  # reduced, same direction: same average price
    else:
        new_basis = new_qty * price  # crossed through zero: the rest opens at this fill's price
    # Realized P&L from the invariant cost_basis - realized == sum(signed qty x price), so that rounding
    # in the average never leaks: qty, cash and total P&L at any mark do not depend on fill order.
    realized += new_basis - basis - signed * price
    return Book(new_qty, new_basis, cash, realized, book.commissions + commission)


def book_from_fills(fills: list[Fill], *, cash: Number = 0) -> Book:
    """Fold fills (in the given order) into a book starting with ``cash``."""
    book = Book(cash=to_decimal(cash))
    for f in fills:
        book = book.apply(f)
    return book


__all__ = [
    "OPEN_STATUSES",
    "ZERO",
    "Account",
    "Book",
    "Fill",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
    "TimeInForce",
    "TradingState",
    "apply_fill",
    "book_from_fills",
    "to_decimal",
]
