"""backtest tables: backtest_runs.

Revision ID: 0004_backtest
Revises: 0003_trading
"""

import sqlalchemy as sa
from alembic import op

from stockflow.db.base import UTCDateTime

revision = "0004_backtest"
down_revision = "0003_trading"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_key", sa.String(length=64), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("strategies", sa.JSON(), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("start", sa.Date(), nullable=True),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("report_dir", sa.Text(), nullable=True),
        sa.Column("tearsheet_path", sa.Text(), nullable=True),
        sa.Column("comparison_csv", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
        sa.UniqueConstraint("run_key", name=op.f("uq_backtest_runs_run_key")),
    )
    op.create_index("ix_backtest_runs_created_at", "backtest_runs", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_backtest_runs_created_at", table_name="backtest_runs")
    op.drop_table("backtest_runs")
