"""ml panel: cross-sectional outputs stored with each prediction (score, P(outperform), expected excess).

Revision ID: 0006_ml_panel
Revises: 0005_pipeline
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_ml_panel"
down_revision = "0005_pipeline"
branch_labels = None
depends_on = None

_COLUMNS = ("score", "prob_outperform", "expected_excess")


def upgrade() -> None:
    # Nullable: rows stored before this revision have no cross-sectional outputs (never made up).
    with op.batch_alter_table("predictions") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
