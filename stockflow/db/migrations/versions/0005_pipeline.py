"""pipeline tables: trade runs, signals, approval requests, portfolio snapshots (owned by the pipeline area).

Revision ID: 0005_pipeline
Revises: 0004_backtest
"""

import sqlalchemy as sa
from alembic import op

from stockflow.db.base import UTCDateTime

revision = "0005_pipeline"
down_revision = "0004_backtest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trade_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("expected_session", sa.Date(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("signal_source", sa.String(length=24), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_runs")),
    )
    op.create_index(op.f("ix_trade_runs_flow_run_id"), "trade_runs", ["flow_run_id"])

    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trade_run_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("action", sa.String(length=4), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model_confidence", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("drivers", sa.JSON(), nullable=False),
        sa.Column("route", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=True),
        sa.Column("qty", sa.Float(), nullable=True),
        sa.Column("reference_price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("risk_amount", sa.Float(), nullable=True),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trade_run_id"], ["trade_runs.id"], name=op.f("fk_signals_trade_run_id_trade_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint("trade_run_id", "symbol", name="uq_signals_trade_run_id_symbol"),
    )
    op.create_index(op.f("ix_signals_trade_run_id"), "signals", ["trade_run_id"])
    op.create_index("ix_signals_status", "signals", ["status"])

    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trade_run_id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trade_run_id"], ["trade_runs.id"], name=op.f("fk_approval_requests_trade_run_id_trade_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
    )
    op.create_index(op.f("ix_approval_requests_trade_run_id"), "approval_requests", ["trade_run_id"])
    op.create_index(op.f("ix_approval_requests_flow_run_id"), "approval_requests", ["flow_run_id"])

    op.create_table(
        "portfolio_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("trade_run_id", sa.Integer(), nullable=True),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("cash", sa.Float(), nullable=False),
        sa.Column("positions_value", sa.Float(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=False),
        sa.Column("daily_pnl", sa.Float(), nullable=False),
        sa.Column("daily_return", sa.Float(), nullable=False),
        sa.Column("n_positions", sa.Integer(), nullable=False),
        sa.Column("positions", sa.JSON(), nullable=False),
        sa.Column("total_return", sa.Float(), nullable=False),
        sa.Column("win_rate", sa.Float(), nullable=True),
        sa.Column("n_round_trips", sa.Integer(), nullable=False),
        sa.Column("sharpe", sa.Float(), nullable=True),
        sa.Column("max_drawdown", sa.Float(), nullable=False),
        sa.Column("realized_pnl", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trade_run_id"],
            ["trade_runs.id"],
            name=op.f("fk_portfolio_snapshots_trade_run_id_trade_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_snapshots")),
        sa.UniqueConstraint("broker", "session", name="uq_portfolio_snapshots_broker_session"),
    )


def downgrade() -> None:
    op.drop_table("portfolio_snapshots")
    op.drop_index(op.f("ix_approval_requests_flow_run_id"), table_name="approval_requests")
    op.drop_index(op.f("ix_approval_requests_trade_run_id"), table_name="approval_requests")
    op.drop_table("approval_requests")
    op.drop_index("ix_signals_status", table_name="signals")
    op.drop_index(op.f("ix_signals_trade_run_id"), table_name="signals")
    op.drop_table("signals")
    op.drop_index(op.f("ix_trade_runs_flow_run_id"), table_name="trade_runs")
    op.drop_table("trade_runs")
