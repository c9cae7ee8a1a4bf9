"""live trading: corporate actions applied to the ledger, and the paper broker's own announcements.

Revision ID: 0008_live
Revises: 0007_portfolio
"""

import sqlalchemy as sa
from alembic import op

from stockflow.db.base import UTCDateTime

revision = "0008_live"
down_revision = "0007_portfolio"
branch_labels = None
depends_on = None


def _dec(name: str) -> sa.Column:
    return sa.Column(name, sa.String(length=48), nullable=False)


def upgrade() -> None:
    op.create_table(
        "applied_corporate_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("broker", sa.String(length=32), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ex_date", sa.Date(), nullable=False),
        _dec("ratio"),
        _dec("cash_per_share"),
        _dec("qty_before"),
        _dec("qty_after"),
        _dec("cash"),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_corporate_actions")),
        sa.UniqueConstraint("broker", "action_id", name="uq_applied_corporate_actions"),
    )
    op.create_table(
        "paper_corporate_actions",
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ex_date", sa.Date(), nullable=False),
        _dec("ratio"),
        _dec("cash_per_share"),
        sa.PrimaryKeyConstraint("action_id", name=op.f("pk_paper_corporate_actions")),
    )
    op.create_index(op.f("ix_paper_corporate_actions_ex_date"), "paper_corporate_actions", ["ex_date"])


def downgrade() -> None:
    op.drop_index(op.f("ix_paper_corporate_actions_ex_date"), table_name="paper_corporate_actions")
    op.drop_table("paper_corporate_actions")
    op.drop_table("applied_corporate_actions")
