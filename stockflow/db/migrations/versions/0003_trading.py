"""trading tables: trading state, risk decisions, orders, fills, ledger, reconciliation, lock, paper broker

Revision ID: 0003_trading
Revises: 0002_ml

Money and quantities are exact decimal text (String(48), see models_trading.DecimalText).
"""

import sqlalchemy as sa
from alembic import op

from stockflow.db.base import UTCDateTime

revision = "0003_trading"
down_revision = "0002_ml"
branch_labels = None
depends_on = None


def _dec(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=48), nullable=nullable)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "trading_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        _ts("updated_at"),
        sa.Column("breaker_tripped", sa.Boolean(), nullable=False),
        sa.Column("breaker_detail", sa.Text(), nullable=False),
        _ts("breaker_tripped_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_state")),
    )
    op.create_table(
        "trading_state_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state_from", sa.String(length=16), nullable=False),
        sa.Column("state_to", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_state_events")),
    )
    op.create_table(
        "equity_marks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        _dec("start_equity"),
        _dec("last_equity"),
        _ts("recorded_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equity_marks")),
        sa.UniqueConstraint("broker", "session", name="uq_equity_marks_broker_session"),
    )
    op.create_table(
        "risk_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("session", sa.Date(), nullable=True),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("intent", sa.String(length=8), nullable=False),
        _dec("qty_requested"),
        _dec("qty_approved"),
        _dec("reference_price", nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
    )
    op.create_index("ix_risk_decisions_run_id", "risk_decisions", ["run_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("session", sa.Date(), nullable=True),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        _dec("qty"),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("time_in_force", sa.String(length=4), nullable=False),
        _dec("limit_price", nullable=True),
        _dec("stop_price", nullable=True),
        _dec("reference_price", nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=8), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _dec("filled_qty"),
        _dec("avg_fill_price", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submit_attempts", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("submitted_at", nullable=True),
        _ts("acknowledged_at", nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_broker_status", "orders", ["broker", "status"])
    op.create_index("ix_orders_broker_order_id", "orders", ["broker_order_id"])
    op.create_index("ix_orders_run_id", "orders", ["run_id"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("execution_id", sa.String(length=128), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        _dec("qty"),
        _dec("price"),
        _dec("commission"),
        _ts("filled_at"),
        _ts("applied_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("broker", "execution_id", name="uq_fills_broker_execution_id"),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])
    op.create_table(
        "ledger_positions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        _dec("qty"),
        _dec("cost_basis"),
        _dec("realized_pnl"),
        _dec("commissions"),
        _dec("high_since_entry", nullable=True),
        _dec("stop_price", nullable=True),
        _ts("opened_at", nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_positions")),
        sa.UniqueConstraint("broker", "symbol", name="uq_ledger_positions_broker_symbol"),
    )
    op.create_table(
        "reconciliation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=True),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_events")),
    )
    op.create_index("ix_reconciliation_events_run_id", "reconciliation_events", ["run_id"])
    op.create_table(
        "execution_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        _ts("acquired_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_execution_locks")),
    )
    # The paper broker's own state.
    op.create_table(
        "paper_account",
        sa.Column("id", sa.Integer(), nullable=False),
        _dec("cash"),
        _dec("initial_cash"),
        sa.Column("last_session", sa.Date(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_account")),
    )
    op.create_table(
        "paper_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        _dec("qty"),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("time_in_force", sa.String(length=4), nullable=False),
        _dec("limit_price", nullable=True),
        _dec("stop_price", nullable=True),
        _dec("reference_price", nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        _dec("filled_qty"),
        _dec("avg_fill_price", nullable=True),
        sa.Column("placed_session", sa.Date(), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_orders")),
        sa.UniqueConstraint("client_order_id", name="uq_paper_orders_client_order_id"),
    )
    op.create_index("ix_paper_orders_status", "paper_orders", ["status"])
    op.create_table(
        "paper_fills",
        sa.Column("execution_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        _dec("qty"),
        _dec("price"),
        _dec("commission"),
        sa.Column("session", sa.Date(), nullable=False),
        _ts("filled_at"),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_paper_fills")),
    )
    op.create_index("ix_paper_fills_order_id", "paper_fills", ["order_id"])
    op.create_table(
        "paper_positions",
        sa.Column("symbol", sa.String(length=16), nullable=False),
        _dec("qty"),
        _dec("cost_basis"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_paper_positions")),
    )
    op.create_table(
        "paper_marks",
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        _dec("close"),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_paper_marks")),
    )


def downgrade() -> None:
    for index, table in (
        ("ix_paper_fills_order_id", "paper_fills"),
        ("ix_paper_orders_status", "paper_orders"),
        ("ix_reconciliation_events_run_id", "reconciliation_events"),
        ("ix_fills_client_order_id", "fills"),
        ("ix_orders_run_id", "orders"),
        ("ix_orders_broker_order_id", "orders"),
        ("ix_orders_broker_status", "orders"),
        ("ix_risk_decisions_run_id", "risk_decisions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "paper_marks",
        "paper_positions",
        "paper_fills",
        "paper_orders",
        "paper_account",
        "execution_locks",
        "reconciliation_events",
        "ledger_positions",
        "fills",
        "orders",
        "risk_decisions",
        "equity_marks",
        "trading_state_events",
        "trading_state",
    ):
        op.drop_table(table)
