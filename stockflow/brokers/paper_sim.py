"""The embedded paper broker's simulation: executing working orders on each new bar, marking positions,
and the account helpers the broker's methods share (see :mod:`stockflow.brokers.paper`)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stockflow.brokers.paper_rules import actions_from_bar, apply_action, check_pdt
from stockflow.config.sections import BrokerSettings
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import (
    PaperAccountRow,
    PaperFillRow,
    PaperMarkRow,
    PaperOrderRow,
    PaperPositionRow,
)
from stockflow.domain.orders import (
    ZERO,
    Book,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    apply_fill,
    to_decimal,
)

OPEN = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
_CENT4 = Decimal("0.0001")
_NY = ZoneInfo("America/New_York")
_BPS = Decimal(10_000)


def _q(x: Decimal) -> Decimal:
    return x.quantize(_CENT4, rounding=ROUND_HALF_UP)


def _session_open(session: dt.date) -> dt.datetime:
    return dt.datetime.combine(session, dt.time(9, 30), tzinfo=_NY).astimezone(dt.UTC)


def to_order(r: PaperOrderRow) -> Order:
    """A paper order row as the broker reports it."""
    return Order(
        client_order_id=r.client_order_id,
        symbol=r.symbol,
        side=Side(r.side),
        qty=r.qty,
        type=OrderType(r.type),
        status=OrderStatus(r.status),
        broker_order_id=r.id,
        filled_qty=r.filled_qty,
        avg_fill_price=r.avg_fill_price,
        limit_price=r.limit_price,
        stop_price=r.stop_price,
        time_in_force=TimeInForce(r.time_in_force),
        submitted_at=r.created_at,
        updated_at=r.updated_at,
        reject_reason=r.reject_reason,
    )


class PaperSimulation:
    """The paper broker's state helpers and its market simulation (see :mod:`stockflow.brokers.paper`)."""

    def __init__(
        self, engine: Engine, settings: BrokerSettings | None = None, *, name: str = "paper"
    ) -> None:
        self.engine = engine
        self.settings = settings or BrokerSettings()
        self.name = name
        self._slip = to_decimal(self.settings.slippage_bps) / _BPS

    # -- helpers --------------------------------------------------------------------------------
    def _account_row(self, s: Session, *, lock: bool = False) -> PaperAccountRow:
        stmt = select(PaperAccountRow).where(PaperAccountRow.id == 1)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalars(stmt).one_or_none()
        if row is None:
            cash = to_decimal(self.settings.initial_cash)
            try:
                with s.begin_nested():  # two first-ever callers may race to open the account
                    s.add(
                        PaperAccountRow(
                            id=1, cash=cash, initial_cash=cash, created_at=utcnow(), updated_at=utcnow()
                        )
                    )
            except IntegrityError:
                pass
            row = s.scalars(stmt).one()
        return row

    def _marks(self, s: Session) -> dict[str, Decimal]:
        return {m.symbol: m.close for m in s.scalars(select(PaperMarkRow))}

    def _commission(self, qty: Decimal, price: Decimal, first_fill: bool) -> Decimal:
        c = (
            to_decimal(self.settings.commission_per_share) * qty
            + to_decimal(self.settings.commission_pct) * qty * price
            + (to_decimal(self.settings.commission_per_order) if first_fill else ZERO)
        )
        return _q(c)

    def _equity(self, s: Session, acct: PaperAccountRow) -> Decimal:
        marks = self._marks(s)
        value = ZERO
        for p in s.scalars(select(PaperPositionRow)):
            value += p.qty * marks.get(p.symbol, p.cost_basis / p.qty if p.qty else ZERO)
        return acct.cash + value

    def _est_price(self, o: PaperOrderRow | OrderRequest, marks: dict[str, Decimal]) -> Decimal | None:
        p = o.limit_price or o.stop_price or o.reference_price or marks.get(o.symbol)
        return None if p is None else p

    def _reserved_cash(self, s: Session, marks: dict[str, Decimal]) -> Decimal:
        total = ZERO
        for o in s.scalars(
            select(PaperOrderRow).where(PaperOrderRow.status.in_(OPEN), PaperOrderRow.side == "buy")
        ):
            p = self._est_price(o, marks) or ZERO
            rem = o.qty - o.filled_qty
            total += rem * p * (1 + self._slip) + self._commission(rem, p, o.filled_qty == 0)
        return total

    # -- simulation -----------------------------------------------------------------------------
    @property
    def last_session(self) -> dt.date | None:
        """The last bar session processed (None before the first)."""
        with transaction(self.engine) as s:
            return self._account_row(s).last_session

    def process_bars(self, bars: pl.DataFrame) -> list[Fill]:
        """Execute working orders on every session in ``bars`` after the last one processed, in order,
        and mark positions at each session's close. Idempotent: sessions already processed are skipped.
        The first call ever processes only the latest session (there is nothing working before it).

        ``bars`` has the canonical bar columns (symbol, session, open, high, low, close). Returns the
        fills it created.
        """
        if bars.is_empty():
            return []
        with transaction(self.engine) as s:
            last = self._account_row(s).last_session
        sessions = sorted(set(bars.get_column("session").to_list()))
        todo = [d for d in sessions if last is None or d > last]
        if last is None:
            todo = todo[-1:]
        fills: list[Fill] = []
        for session in todo:
            day = bars.filter(pl.col("session") == session)
            fills.extend(self._process_session(session, {r["symbol"]: r for r in day.iter_rows(named=True)}))
        return fills

    def _process_session(self, session: dt.date, bars: dict[str, dict]) -> list[Fill]:
        out: list[Fill] = []
        with transaction(self.engine) as s:
            acct = self._account_row(s, lock=True)
            if acct.last_session is not None and session <= acct.last_session:
                return []  # processed by someone else meanwhile
            for sym, row in bars.items():  # splits and dividends take effect before the open
                for action in actions_from_bar(sym, session, row):
                    apply_action(s, acct, action)
            working = s.scalars(
                select(PaperOrderRow).where(PaperOrderRow.status.in_(OPEN)).order_by(PaperOrderRow.created_at)
            ).all()
            for o in working:
                if o.placed_session is not None and o.placed_session >= session:
                    continue  # placed after this bar: waits for the next one
                bar = bars.get(o.symbol)
                price = self._execution_price(o, bar) if bar is not None else None
                if price is None:
                    if o.time_in_force == TimeInForce.DAY.value:
                        o.status, o.updated_at = OrderStatus.EXPIRED.value, utcnow()
                    continue
                fill = self._fill(s, acct, o, price, session)
                if fill is not None:
                    out.append(fill)
            for sym, bar in bars.items():
                mark = s.get(PaperMarkRow, sym)
                close = to_decimal(bar["close"])
                if mark is None:
                    s.add(PaperMarkRow(symbol=sym, session=session, close=close))
                elif mark.session <= session:
                    mark.session, mark.close = session, close
            acct.last_session, acct.updated_at = session, utcnow()
        return out

    def _execution_price(self, o: PaperOrderRow, bar: dict) -> Decimal | None:
        op, hi, lo = to_decimal(bar["open"]), to_decimal(bar["high"]), to_decimal(bar["low"])
        buy = o.side == Side.BUY.value
        slip_up, slip_down = 1 + self._slip, 1 - self._slip
        if o.type == OrderType.MARKET.value:
            return _q(op * (slip_up if buy else slip_down))
        if o.type == OrderType.STOP.value:
            stop = o.stop_price
            assert stop is not None
            if buy and hi >= stop:
                return _q(max(op, stop) * slip_up)
            if not buy and lo <= stop:
                return _q(min(op, stop) * slip_down)
            return None
        limit = o.limit_price
        assert limit is not None
        if buy and lo <= limit:
            return _q(min(op, limit))
        if not buy and hi >= limit:
            return _q(max(op, limit))
        return None

    def _fill(
        self, s: Session, acct: PaperAccountRow, o: PaperOrderRow, price: Decimal, session: dt.date
    ) -> Fill | None:
        qty = o.qty - o.filled_qty
        commission = self._commission(qty, price, o.filled_qty == 0)
        side = Side(o.side)
        pos = s.get(PaperPositionRow, o.symbol)
        book = Book(qty=pos.qty, cost_basis=pos.cost_basis) if pos is not None else Book()
        if side is Side.BUY and qty * price + commission > acct.cash:
            o.status, o.reject_reason, o.updated_at = (
                OrderStatus.REJECTED.value,
                f"insufficient cash at fill: {qty} x {price} + {commission} > {acct.cash}",
                utcnow(),
            )
            return None
        if self.settings.paper_pdt:
            why = check_pdt(s, o.symbol, side, session, self._equity(s, acct))
            if why is not None:
                o.status, o.reject_reason, o.updated_at = (
                    OrderStatus.REJECTED.value,
                    f"pattern day trading protection: {why}",
                    utcnow(),
                )
                return None
        if side is Side.SELL and qty > book.qty:
            o.status, o.reject_reason, o.updated_at = (
                OrderStatus.REJECTED.value,
                f"insufficient qty at fill: {qty} > held {book.qty}",
                utcnow(),
            )
            return None
        new = apply_fill(book, side, qty, price, commission)
        acct.cash = acct.cash - side.sign * qty * price - commission
        if pos is None:
            s.add(
                PaperPositionRow(symbol=o.symbol, qty=new.qty, cost_basis=new.cost_basis, updated_at=utcnow())
            )
        elif new.qty == 0:
            s.delete(pos)
        else:
            pos.qty, pos.cost_basis, pos.updated_at = new.qty, new.cost_basis, utcnow()
        n_prev = len(s.scalars(select(PaperFillRow.execution_id).where(PaperFillRow.order_id == o.id)).all())
        ts = _session_open(session)
        fill_row = PaperFillRow(
            execution_id=f"{o.id}-{n_prev + 1}",
            order_id=o.id,
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side,
            qty=qty,
            price=price,
            commission=commission,
            session=session,
            filled_at=ts,
        )
        s.add(fill_row)
        o.avg_fill_price = (
            price
            if o.filled_qty == 0 or o.avg_fill_price is None
            else ((o.avg_fill_price * o.filled_qty + price * qty) / (o.filled_qty + qty))
        )
        o.filled_qty = o.filled_qty + qty
        o.status, o.updated_at = OrderStatus.FILLED.value, utcnow()
        return Fill(
            execution_id=fill_row.execution_id,
            broker_order_id=o.id,
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=side,
            qty=qty,
            price=price,
            commission=commission,
            timestamp=ts,
        )
