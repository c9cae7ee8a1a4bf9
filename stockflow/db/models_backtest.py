"""Tables of the backtest area: one row per backtest run (what was asked, the metrics, the reports)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stockflow.db.base import Base, UTCDateTime, utcnow

#: Statuses of a backtest run.
RUN_STATUSES = ("running", "succeeded", "failed")


class BacktestRun(Base):
    """A backtest comparison: strategies x universe x window, costs on and off, and where its reports are.

    ``metrics`` maps ``strategy -> {"on": {...}, "off": {...}}`` (benchmarks included, NaN as null);
    ``params`` holds the costs, the engine configuration and the strategy parameters.
    """

    __tablename__ = "backtest_runs"
    __table_args__ = (Index("ix_backtest_runs_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_key: Mapped[str] = mapped_column(String(64), unique=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    strategies: Mapped[list] = mapped_column(JSON, default=list)
    symbols: Mapped[list] = mapped_column(JSON, default=list)
    start: Mapped[dt.date | None] = mapped_column(Date)
    end: Mapped[dt.date | None] = mapped_column(Date)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    report_dir: Mapped[str | None] = mapped_column(Text)
    tearsheet_path: Mapped[str | None] = mapped_column(Text)
    comparison_csv: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
