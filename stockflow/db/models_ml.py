"""Tables of the ml area: model registry, retrain decisions, predictions (and skips), drift reports."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from stockflow.db.base import Base, UTCDateTime, utcnow

#: Registry statuses. Exactly one model is champion at a time (enforced in stockflow.ml.registry).
STATUSES = ("challenger", "champion", "retired")


class ModelRecord(Base):
    """One trained model: what it is, what it was trained on, how it scored, where its files are."""

    __tablename__ = "model_registry"
    __table_args__ = (
        Index("ix_model_registry_status", "status"),
        # At most one champion, enforced by the database on both backends (partial unique index).
        Index(
            "uq_model_registry_one_champion",
            "status",
            unique=True,
            sqlite_where=text("status = 'champion'"),
            postgresql_where=text("status = 'champion'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    feature_set_version: Mapped[str] = mapped_column(String(32))
    symbols: Mapped[list] = mapped_column(JSON, default=list)
    train_start: Mapped[dt.date | None] = mapped_column(Date)
    train_end: Mapped[dt.date | None] = mapped_column(Date)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    artifact_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="challenger")
    retrain_run_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    promoted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)


class RetrainRun(Base):
    """One retrain: what was asked, the walk-forward comparison, the promotion decision and its reason."""

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running/succeeded/failed
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    champion_before: Mapped[str | None] = mapped_column(String(64))
    best_challenger: Mapped[str | None] = mapped_column(String(64))
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # {name: {metric: value}} incl. baselines


class PredictionRow(Base):
    """A stored prediction: one per (symbol, session, model version), written once."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("symbol", "session", "model_version", name="uq_predictions_symbol_session_model"),
        Index("ix_predictions_session", "session"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(16))
    session: Mapped[dt.date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Cross-sectional outputs (revision 0006_ml_panel); null on rows stored before it.
    score: Mapped[float | None] = mapped_column(Float)
    prob_outperform: Mapped[float | None] = mapped_column(Float)
    expected_excess: Mapped[float | None] = mapped_column(Float)


class PredictionSkip(Base):
    """A symbol the prediction stage could not score for a session, and why."""

    __tablename__ = "prediction_skips"
    __table_args__ = (
        UniqueConstraint(
            "symbol", "session", "model_version", name="uq_prediction_skips_symbol_session_model"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(16))
    session: Mapped[dt.date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DriftReportRow(Base):
    """One Evidently drift comparison of recent features and predictions against the champion's reference."""

    __tablename__ = "drift_reports"
    __table_args__ = (Index("ix_drift_reports_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    model_version: Mapped[str] = mapped_column(String(64))
    reference_start: Mapped[dt.date | None] = mapped_column(Date)
    reference_end: Mapped[dt.date | None] = mapped_column(Date)
    current_start: Mapped[dt.date | None] = mapped_column(Date)
    current_end: Mapped[dt.date | None] = mapped_column(Date)
    n_reference: Mapped[int] = mapped_column(Integer, default=0)
    n_current: Mapped[int] = mapped_column(Integer, default=0)
    drift_share: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)  # drift_share > threshold
    column_scores: Mapped[dict] = mapped_column(JSON, default=dict)
    prediction_drift_score: Mapped[float | None] = mapped_column(Float)
    prediction_drift: Mapped[bool] = mapped_column(Boolean, default=False)
    report_path: Mapped[str | None] = mapped_column(Text)
    retrain_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    retrain_request: Mapped[str | None] = mapped_column(Text)  # flow run id or why none was started
