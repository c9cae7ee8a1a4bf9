"""Tables of the trading area: trading state (kill switch + breaker), risk decisions, our order book,
fills, the position ledger, reconciliation events, the run lock, and the embedded paper broker's own
state (kept apart from ours, so that reconciliation compares two real parties).

Money and quantities are stored as exact decimal text (``DecimalText``): SQLite has no exact decimal
type and would turn them into binary floats.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from stockflow.db.base import Base, UTCDateTime, utcnow


class DecimalText(TypeDecorator[Decimal]):
    """An exact Decimal stored as text on every backend."""

    impl = String(48)
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | str | None, dialect: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("float given to an exact decimal column; convert with Decimal(str(x))")
        return str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: object) -> Decimal | None:
        return None if value is None else Decimal(value)


class TradingStateRow(Base):
    """The one persisted trading state (row id 1): kill switch and circuit breaker."""

    __tablename__ = "trading_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="ACTIVE")  # ACTIVE / REDUCING / HALTED
    reason: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    breaker_tripped: Mapped[bool] = mapped_column(Boolean, default=False)
    breaker_detail: Mapped[str] = mapped_column(Text, default="")
    breaker_tripped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class TradingStateEvent(Base):
    """History of the trading state: who changed it, when, and why."""

    __tablename__ = "trading_state_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # set / breaker_trip / reset
    state_from: Mapped[str] = mapped_column(String(16))
    state_to: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EquityMark(Base):
    """Start-of-day equity per broker and session, the reference of the daily-loss breaker."""

    __tablename__ = "equity_marks"
    __table_args__ = (UniqueConstraint("broker", "session", name="uq_equity_marks_broker_session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broker: Mapped[str] = mapped_column(String(32))
    session: Mapped[dt.date] = mapped_column(Date)
    start_equity: Mapped[Decimal] = mapped_column(DecimalText())
    last_equity: Mapped[Decimal] = mapped_column(DecimalText())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskDecisionRow(Base):
    """One risk decision about one proposed order, with its reason code."""

    __tablename__ = "risk_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    session: Mapped[dt.date | None] = mapped_column(Date)
    client_order_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    intent: Mapped[str] = mapped_column(String(8))
    qty_requested: Mapped[Decimal] = mapped_column(DecimalText())
    qty_approved: Mapped[Decimal] = mapped_column(DecimalText())
    reference_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    action: Mapped[str] = mapped_column(String(16))  # approved / sized_down / denied
    reason_code: Mapped[str] = mapped_column(String(64))  # approved, sized_down:<rule>, denied:<rule>
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderRow(Base):
    """Our side of every order: written BEFORE it is sent, updated from the broker's answers."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
        Index("ix_orders_broker_status", "broker", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(128))
    broker: Mapped[str] = mapped_column(String(32))
    broker_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    session: Mapped[dt.date | None] = mapped_column(Date)
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(DecimalText())
    type: Mapped[str] = mapped_column(String(8))
    time_in_force: Mapped[str] = mapped_column(String(4), default="day")
    limit_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    stop_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    reference_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    reason: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[str] = mapped_column(String(8), default="entry")  # entry / exit
    origin: Mapped[str] = mapped_column(String(16), default="stockflow")  # stockflow / outside
    status: Mapped[str] = mapped_column(String(20))
    filled_qty: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    avg_fill_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    error: Mapped[str | None] = mapped_column(Text)
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FillRow(Base):
    """One execution, applied to the ledger exactly once (unique per broker and execution id)."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("broker", "execution_id", name="uq_fills_broker_execution_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broker: Mapped[str] = mapped_column(String(32))
    execution_id: Mapped[str] = mapped_column(String(128))
    broker_order_id: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(DecimalText())
    price: Mapped[Decimal] = mapped_column(DecimalText())
    commission: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    filled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerPosition(Base):
    """Our position per broker and symbol, built from applied fills (and recorded adjustments), plus the
    protective stop we keep for it."""

    __tablename__ = "ledger_positions"
    __table_args__ = (UniqueConstraint("broker", "symbol", name="uq_ledger_positions_broker_symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broker: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(16))
    qty: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    cost_basis: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    commissions: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    high_since_entry: Mapped[Decimal | None] = mapped_column(DecimalText())
    stop_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReconciliationEvent(Base):
    """What a reconciliation found: adopted outside activity, resolved unknowns, and mismatches."""

    __tablename__ = "reconciliation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    broker: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(16))
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExecutionLock(Base):
    """A lease-based lock row (SQLite; PostgreSQL uses an advisory lock and records the holder here)."""

    __tablename__ = "execution_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


# --- the embedded paper broker's own state (the "other party") ------------------------------------


class PaperAccountRow(Base):
    """The paper broker's account (row id 1)."""

    __tablename__ = "paper_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cash: Mapped[Decimal] = mapped_column(DecimalText())
    initial_cash: Mapped[Decimal] = mapped_column(DecimalText())
    last_session: Mapped[dt.date | None] = mapped_column(Date)  # last bar session processed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaperOrderRow(Base):
    """An order inside the paper broker."""

    __tablename__ = "paper_orders"
    __table_args__ = (UniqueConstraint("client_order_id", name="uq_paper_orders_client_order_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(DecimalText())
    type: Mapped[str] = mapped_column(String(8))
    time_in_force: Mapped[str] = mapped_column(String(4))
    limit_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    stop_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    reference_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    status: Mapped[str] = mapped_column(String(20), index=True)
    filled_qty: Mapped[Decimal] = mapped_column(DecimalText(), default=Decimal(0))
    avg_fill_price: Mapped[Decimal | None] = mapped_column(DecimalText())
    placed_session: Mapped[dt.date | None] = mapped_column(Date)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaperFillRow(Base):
    """An execution inside the paper broker."""

    __tablename__ = "paper_fills"

    execution_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    client_order_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal] = mapped_column(DecimalText())
    price: Mapped[Decimal] = mapped_column(DecimalText())
    commission: Mapped[Decimal] = mapped_column(DecimalText())
    session: Mapped[dt.date] = mapped_column(Date)
    filled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PaperPositionRow(Base):
    """A position inside the paper broker."""

    __tablename__ = "paper_positions"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    qty: Mapped[Decimal] = mapped_column(DecimalText())
    cost_basis: Mapped[Decimal] = mapped_column(DecimalText())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaperMarkRow(Base):
    """The last bar the paper broker saw per symbol (marks positions, prices affordability checks)."""

    __tablename__ = "paper_marks"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    session: Mapped[dt.date] = mapped_column(Date)
    close: Mapped[Decimal] = mapped_column(DecimalText())
