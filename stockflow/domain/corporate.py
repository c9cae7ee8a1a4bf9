"""Corporate actions that change a position without a trade: splits and cash dividends.

A split by ``ratio`` (new/old, e.g. 4 for 4-for-1, 0.1 for 1-for-10) multiplies the quantity by it,
keeps the cost basis (so the average price is divided by it) and moves every price of the position,
its protective stop included, into the new price space. A cash dividend pays ``cash_per_share`` x the
quantity held on the record date; it is income, not a trade.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CorporateAction(BaseModel):
    """One announced corporate action of one symbol, effective on ``ex_date``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str = Field(min_length=1)
    symbol: str
    kind: Literal["split", "dividend"]
    ex_date: dt.date
    ratio: Decimal = Field(Decimal(1), gt=0)  # new shares per old share (splits)
    cash_per_share: Decimal = Field(Decimal(0), ge=0)  # dividends

    @property
    def ratio_text(self) -> str:
        """``4-for-1``, ``1-for-10`` (a reverse split), ``3-for-2``."""
        r = self.ratio
        if r == r.to_integral_value():
            return f"{int(r)}-for-1"
        inv = 1 / r
        if inv == inv.to_integral_value():
            return f"1-for-{int(inv)}"
        return f"{r.normalize():f}-for-1"

    def split_qty(self, qty: Decimal) -> Decimal:
        """The quantity after the split."""
        return qty * self.ratio

    def split_price(self, price: Decimal) -> Decimal:
        """A price (average, stop) moved into the post-split price space, to the cent."""
        return (price / self.ratio).quantize(Decimal("0.01"))
