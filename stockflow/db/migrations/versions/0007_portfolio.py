"""signals: rank, score and expected excess return of each symbol in the session (issue 9, portfolio).

Revision ID: 0007_portfolio
Revises: 0006_ml_panel
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_portfolio"
down_revision = "0006_ml_panel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("rank", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("expected_excess", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("expected_excess")
        batch.drop_column("score")
        batch.drop_column("rank")
