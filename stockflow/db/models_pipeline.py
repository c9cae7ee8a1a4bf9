"""Tables of the pipeline area: trade runs, signals, approval requests, portfolio snapshots.

Orders, fills, positions and risk decisions live in the trading area's tables; these tables say why a
run traded what it traded (signal, route, human decision) and how the account did over time. Prices here
are for display and metrics (floats); the exact money is in the trading ledger.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stockflow.db.base import Base, UTCDateTime, utcnow


class TradeRun(Base):
    """One run of the daily trade pipeline: what it was asked, what it found, how it ended."""

    __tablename__ = "trade_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(8))  # auto / manual / hybrid
    # running / awaiting_approval / completed / expired / refused / failed
    status: Mapped[str] = mapped_column(String(24), default="running")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expected_session: Mapped[dt.date | None] = mapped_column(Date)
    model_version: Mapped[str | None] = mapped_column(String(64))
    signal_source: Mapped[str] = mapped_column(String(24), default="champion")
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")


class SignalRow(Base):
    """A signal from one prediction, its route (auto/approval/ignored), the order it became and its fate.

    ``status``: pending, approved, rejected, expired, executed, failed, cancelled, or ignored (HOLD or
    below the mode's threshold). ``reason_code`` is machine-readable (``risk:denied:max_positions``,
    ``human:rejected``, ``approval:expired``...), ``reason`` says it in words.
    """

    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("trade_run_id", "symbol", name="uq_signals_trade_run_id_symbol"),
        Index("ix_signals_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trade_run_id: Mapped[int] = mapped_column(ForeignKey("trade_runs.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(16))
    session: Mapped[dt.date] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(4))  # buy / sell / hold
    probability: Mapped[float] = mapped_column(Float)  # P(outperform the universe), calibrated
    confidence: Mapped[float] = mapped_column(Float)  # the same: the one meaning of confidence
    model_confidence: Mapped[float | None] = mapped_column(Float)  # the model's |2p - 1|
    model_version: Mapped[str] = mapped_column(String(64))
    drivers: Mapped[list] = mapped_column(JSON, default=list)  # [{"feature","value","z","weight"}]
    route: Mapped[str] = mapped_column(String(10))  # auto / approval / ignored
    status: Mapped[str] = mapped_column(String(12), default="pending")
    reason_code: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    side: Mapped[str | None] = mapped_column(String(4))
    qty: Mapped[float | None] = mapped_column(Float)
    reference_price: Mapped[float | None] = mapped_column(Float)
    stop_price: Mapped[float | None] = mapped_column(Float)
    risk_amount: Mapped[float | None] = mapped_column(Float)  # money lost if stopped out
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    decided_by: Mapped[str | None] = mapped_column(String(64))  # mode / risk / human / timeout
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rank: Mapped[int | None] = mapped_column(Integer)  # 1 = best score of the session (issue 9)
    score: Mapped[float | None] = mapped_column(Float)
    expected_excess: Mapped[float | None] = mapped_column(Float)


class ApprovalRequest(Base):
    """A plan of orders shown to a person (Prefect UI form / ``stockflow approve``) and what came back.

    ``status``: pending, decided (approved and/or rejected orders), expired (no answer in time), refused
    (plan hash mismatch or re-validation failed: nothing sent), abandoned (the run ended without an
    answer, e.g. the process died).
    """

    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trade_run_id: Mapped[int] = mapped_column(ForeignKey("trade_runs.id"), index=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    plan_hash: Mapped[str] = mapped_column(String(64))
    plan: Mapped[list] = mapped_column(JSON, default=list)  # the proposed orders, as shown
    description: Mapped[str] = mapped_column(Text, default="")  # markdown shown above the form
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision: Mapped[dict] = mapped_column(JSON, default=dict)  # symbol -> approve / reject
    note: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")


class PortfolioSnapshot(Base):
    """The account at the end of a run, one row per broker and session (the last run of a day wins),
    with the performance metrics computed over the whole history up to that session."""

    __tablename__ = "portfolio_snapshots"
    __table_args__ = (UniqueConstraint("broker", "session", name="uq_portfolio_snapshots_broker_session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broker: Mapped[str] = mapped_column(String(32))
    session: Mapped[dt.date] = mapped_column(Date)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    trade_run_id: Mapped[int | None] = mapped_column(ForeignKey("trade_runs.id"))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    equity: Mapped[float] = mapped_column(Float)
    cash: Mapped[float] = mapped_column(Float)
    positions_value: Mapped[float] = mapped_column(Float)
    exposure: Mapped[float] = mapped_column(Float)  # positions_value / equity
    daily_pnl: Mapped[float] = mapped_column(Float)
    daily_return: Mapped[float] = mapped_column(Float)
    n_positions: Mapped[int] = mapped_column(Integer)
    positions: Mapped[list] = mapped_column(JSON, default=list)
    total_return: Mapped[float] = mapped_column(Float)
    win_rate: Mapped[float | None] = mapped_column(Float)
    n_round_trips: Mapped[int] = mapped_column(Integer, default=0)
    sharpe: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[float] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
