"""Tables of live trading's corporate actions: the ones our ledger has applied (once per broker and
action), and the paper broker's own announcements (its "other party" state, like ``paper_*``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stockflow.db.base import Base, UTCDateTime, utcnow
from stockflow.db.models_trading import DecimalText


class AppliedCorporateAction(Base):
    """A split or dividend our ledger has applied (unique per broker and action id)."""

    __tablename__ = "applied_corporate_actions"
    __table_args__ = (UniqueConstraint("broker", "action_id", name="uq_applied_corporate_actions"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broker: Mapped[str] = mapped_column(String(32))
    action_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # split / dividend
    ex_date: Mapped[dt.date] = mapped_column(Date)
    ratio: Mapped[Decimal] = mapped_column(DecimalText())
    cash_per_share: Mapped[Decimal] = mapped_column(DecimalText())
    qty_before: Mapped[Decimal] = mapped_column(DecimalText())
    qty_after: Mapped[Decimal] = mapped_column(DecimalText())
    cash: Mapped[Decimal] = mapped_column(DecimalText())  # dividend paid on the position
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaperCorporateAction(Base):
    """A corporate action the paper broker applied from the bars (its announcements)."""

    __tablename__ = "paper_corporate_actions"

    action_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    ex_date: Mapped[dt.date] = mapped_column(Date, index=True)
    ratio: Mapped[Decimal] = mapped_column(DecimalText())
    cash_per_share: Mapped[Decimal] = mapped_column(DecimalText())
