"""The embedded paper broker: a simulated broker whose account, orders, fills and positions live in the
state store (``paper_*`` tables), apart from stockflow's own order book and ledger.

Orders are placed between sessions (the pipeline runs after the close) and execute on the NEXT bar that
:meth:`PaperBroker.process_bars` is given:

- market orders fill at that bar's open, moved against us by ``slippage_bps``;
- stop orders trigger when the bar's range reaches the stop; a bar that opens beyond the stop (a gap
  through it) fills at the open, otherwise at the stop (both with slippage); they stay working (GTC)
  until triggered or cancelled;
- limit orders fill at the better of the open and the limit when the range reaches the limit;
- DAY orders that did not fill on their bar expire;
- commission = per share x qty + per order (on the order's first fill) + percent x notional.

Orders it cannot afford are rejected at submit (``RejectedError``, no order created, like a 403 from
Alpaca); a buy whose cost at the fill exceeds the cash is rejected then.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import select

from stockflow.brokers.base import DuplicateClientOrderIdError, MarketClock
from stockflow.brokers.paper_rules import announced, check_pdt, check_wash_trade, next_session
from stockflow.brokers.paper_sim import OPEN as _OPEN
from stockflow.brokers.paper_sim import PaperSimulation
from stockflow.brokers.paper_sim import to_order as _to_order
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import (
    PaperFillRow,
    PaperOrderRow,
    PaperPositionRow,
)
from stockflow.domain.corporate import CorporateAction
from stockflow.domain.orders import (
    ZERO,
    Account,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from stockflow.errors import RejectedError


class PaperBroker(PaperSimulation):
    """Simulated broker persisted in the database (see module docstring)."""

    supports_stop_orders = True

    # -- Broker protocol ------------------------------------------------------------------------
    def account(self) -> Account:
        """Cash, equity (positions at the last close seen) and buying power (cash less open buys)."""
        with transaction(self.engine) as s:
            acct = self._account_row(s)
            marks = self._marks(s)
            bp = acct.cash - self._reserved_cash(s, marks)
            return Account(cash=acct.cash, equity=self._equity(s, acct), buying_power=max(bp, ZERO))

    def positions(self) -> list[Position]:
        """Every non-zero position, marked at the last close seen."""
        with transaction(self.engine) as s:
            marks = self._marks(s)
            return [
                Position(
                    symbol=p.symbol,
                    qty=p.qty,
                    avg_entry_price=p.cost_basis / p.qty,
                    current_price=marks.get(p.symbol),
                )
                for p in s.scalars(select(PaperPositionRow).order_by(PaperPositionRow.symbol))
                if p.qty != 0
            ]

    def open_orders(self) -> list[Order]:
        """Orders still working."""
        with transaction(self.engine) as s:
            rows = s.scalars(
                select(PaperOrderRow)
                .where(PaperOrderRow.status.in_(_OPEN))
                .order_by(PaperOrderRow.created_at)
            )
            return [_to_order(r) for r in rows]

    def submit(self, request: OrderRequest) -> Order:
        """Accept the order (it executes on the next bar); raises RejectedError or
        DuplicateClientOrderIdError."""
        with transaction(self.engine) as s:
            acct = self._account_row(s, lock=True)  # serializes submits: no two can spend the same cash
            existing = s.scalars(
                select(PaperOrderRow).where(PaperOrderRow.client_order_id == request.client_order_id)
            ).one_or_none()
            if existing is not None:
                raise DuplicateClientOrderIdError(request.client_order_id)
            check_wash_trade(s, request)
            marks = self._marks(s)
            if self.settings.paper_pdt:
                why = check_pdt(
                    s, request.symbol, request.side, next_session(acct.last_session), self._equity(s, acct)
                )
                if why is not None:
                    raise RejectedError(
                        f"paper broker: trade denied due to pattern day trading protection: {why}"
                    )
            price = self._est_price(request, marks)
            if price is None:
                raise RejectedError(f"paper broker: no price known for {request.symbol} (unknown symbol?)")
            if request.qty != request.qty.to_integral_value():
                raise RejectedError(f"paper broker: whole shares only, got {request.qty} {request.symbol}")
            if request.side is Side.SELL:
                pos = s.get(PaperPositionRow, request.symbol)
                held = pos.qty if pos is not None else ZERO
                pending = sum(
                    (
                        o.qty - o.filled_qty
                        for o in s.scalars(
                            select(PaperOrderRow).where(
                                PaperOrderRow.status.in_(_OPEN),
                                PaperOrderRow.side == "sell",
                                PaperOrderRow.symbol == request.symbol,
                            )
                        )
                    ),
                    ZERO,
                )
                if request.qty > held - pending:
                    raise RejectedError(
                        f"paper broker: insufficient qty available for {request.symbol}: "
                        f"requested {request.qty}, held {held}, held for open orders {pending}"
                    )
            else:
                need = request.qty * price * (1 + self._slip) + self._commission(request.qty, price, True)
                available = acct.cash - self._reserved_cash(s, marks)
                if need > available:
                    raise RejectedError(
                        f"paper broker: insufficient buying power for {request.qty} {request.symbol}: "
                        f"need {need:.2f}, available {available:.2f}"
                    )
            now = utcnow()
            row = PaperOrderRow(
                id=str(uuid.uuid4()),
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                side=request.side.value,
                qty=request.qty,
                type=request.type.value,
                time_in_force=(
                    TimeInForce.GTC if request.type is OrderType.STOP else request.time_in_force
                ).value,
                limit_price=request.limit_price,
                stop_price=request.stop_price,
                reference_price=request.reference_price,
                status=OrderStatus.NEW.value,
                filled_qty=ZERO,
                placed_session=acct.last_session,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return _to_order(row)

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client id, or None."""
        with transaction(self.engine) as s:
            r = s.scalars(
                select(PaperOrderRow).where(PaperOrderRow.client_order_id == client_order_id)
            ).one_or_none()
            return None if r is None else _to_order(r)

    def get_order(self, broker_order_id: str) -> Order | None:
        """The order with this broker id, or None."""
        with transaction(self.engine) as s:
            r = s.get(PaperOrderRow, broker_order_id)
            return None if r is None else _to_order(r)

    def cancel(self, broker_order_id: str) -> None:
        """Cancel a working order; a final order stays as it is."""
        with transaction(self.engine) as s:
            r = s.get(PaperOrderRow, broker_order_id, with_for_update=True)
            if r is None:
                raise RejectedError(f"paper broker: no order {broker_order_id}")
            if r.status in _OPEN:
                r.status, r.updated_at = OrderStatus.CANCELED.value, utcnow()

    @property
    def opening_balance(self) -> Decimal:
        """The cash the paper account opened with (the baseline of its total return)."""
        with transaction(self.engine) as s:
            return self._account_row(s).initial_cash

    def corporate_actions(self, since: dt.date, until: dt.date) -> list[CorporateAction]:
        """The splits and dividends applied with an ex-date in [since, until]."""
        with transaction(self.engine) as s:
            return announced(s, since, until)

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """Executions at or after ``since``, oldest first."""
        with transaction(self.engine) as s:
            stmt = select(PaperFillRow)
            if since is not None:
                stmt = stmt.where(PaperFillRow.filled_at >= since)
            return [
                Fill(
                    execution_id=f.execution_id,
                    broker_order_id=f.order_id,
                    client_order_id=f.client_order_id,
                    symbol=f.symbol,
                    side=Side(f.side),
                    qty=f.qty,
                    price=f.price,
                    commission=f.commission,
                    timestamp=f.filled_at,
                )
                for f in s.scalars(stmt.order_by(PaperFillRow.filled_at, PaperFillRow.execution_id))
            ]

    def clock(self) -> MarketClock:
        """The paper market is between sessions: closed, at the last session processed."""
        with transaction(self.engine) as s:
            acct = self._account_row(s)
            return MarketClock(
                timestamp=utcnow(), is_open=False, next_open=None, next_close=None, session=acct.last_session
            )
