"""Tables of the data layer: bars, ingest runs, validation results, quarantined rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stockflow.db.base import Base, UTCDateTime, utcnow


class IngestRun(Base):
    """One ingest: what was asked, what came back, what was stored and quarantined."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running/succeeded/failed
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    symbols_requested: Mapped[int] = mapped_column(Integer, default=0)
    symbols_ok: Mapped[int] = mapped_column(Integer, default=0)
    rows_fetched: Mapped[int] = mapped_column(Integer, default=0)
    rows_stored: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)  # [{"symbol":..,"error":..}]
    raw_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)  # why the run failed, if it did
    data_docs_path: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # quarantined_by_rule, warnings, timings


class BarRow(Base):
    """One daily bar. ``quarantined`` rows are kept but excluded downstream."""

    __tablename__ = "bars"
    __table_args__ = (
        UniqueConstraint("symbol", "timeframe", "session", name="uq_bars_symbol_timeframe_session"),
        Index("ix_bars_session", "session"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8), default="1Day")
    session: Mapped[dt.date] = mapped_column(Date)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32))
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    ingested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False)


class ValidationResult(Base):
    """Outcome of one expectation (rule) in one validation run."""

    __tablename__ = "validation_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"), index=True)
    suite: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(8))  # error / warning
    success: Mapped[bool] = mapped_column(Boolean)
    element_count: Mapped[int] = mapped_column(Integer, default=0)
    unexpected_count: Mapped[int] = mapped_column(Integer, default=0)
    unexpected_percent: Mapped[float] = mapped_column(Float, default=0.0)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    data_docs_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QuarantinedRow(Base):
    """A row that broke an error rule or could not be parsed, kept with its raw values and the rule."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_symbol_session", "symbol", "session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(Text)  # file path or remote source + symbol
    row_number: Mapped[int | None] = mapped_column(Integer)  # 1-based data row in the file, if any
    symbol: Mapped[str | None] = mapped_column(String(16))
    session: Mapped[dt.date | None] = mapped_column(Date)
    rule: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(8), default="error")
    detail: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when a later ingest stored a corrected bar for this (symbol, session): the row is history.
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    released_by_run: Mapped[int | None] = mapped_column(Integer)


class BarRevision(Base):
    """The values a stored bar had before a re-read replaced them (restated by the source, or a
    quarantined bar repaired): the audit trail of every change to a stored bar."""

    __tablename__ = "bar_revisions"
    __table_args__ = (Index("ix_bar_revisions_symbol_session", "symbol", "session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    session: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(16))  # restated / released
    old_values: Mapped[dict] = mapped_column(JSON)  # open..volume, quarantined, source
    new_values: Mapped[dict] = mapped_column(JSON)
    old_ingest_run_id: Mapped[int | None] = mapped_column(Integer)
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunOwner(Base):
    """Which process runs an ingest or trade run (host, boot, pid, start): a run left ``running`` by a
    process that is gone is marked crashed on the next start."""

    __tablename__ = "run_owners"
    __table_args__ = (UniqueConstraint("kind", "run_id", name="uq_run_owners_kind_run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # ingest / trade
    run_id: Mapped[int] = mapped_column(Integer)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
