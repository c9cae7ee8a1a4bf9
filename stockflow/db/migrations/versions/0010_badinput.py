"""bad input: restated bars kept in an audit table, quarantine rows released, run owners (crash marks).

Revision ID: 0010_badinput
Revises: 0008_live
"""

import sqlalchemy as sa
from alembic import op

from stockflow.db.base import UTCDateTime

revision = "0010_badinput"
down_revision = "0008_live"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bar_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("session", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("old_values", sa.JSON(), nullable=False),
        sa.Column("new_values", sa.JSON(), nullable=False),
        sa.Column("old_ingest_run_id", sa.Integer(), nullable=True),
        sa.Column("ingest_run_id", sa.Integer(), nullable=True),
        sa.Column("replaced_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_runs.id"], name=op.f("fk_bar_revisions_ingest_run_id_ingest_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bar_revisions")),
    )
    op.create_index("ix_bar_revisions_symbol_session", "bar_revisions", ["symbol", "session"])
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("released_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("released_by_run", sa.Integer(), nullable=True))
    op.create_table(
        "run_owners",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_owners")),
        sa.UniqueConstraint("kind", "run_id", name=op.f("uq_run_owners_kind_run_id")),
    )


def downgrade() -> None:
    op.drop_table("run_owners")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("released_by_run")
        batch.drop_column("released_at")
    op.drop_index("ix_bar_revisions_symbol_session", table_name="bar_revisions")
    op.drop_table("bar_revisions")
