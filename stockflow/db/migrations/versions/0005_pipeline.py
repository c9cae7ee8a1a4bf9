"""pipeline tables: signals, approvals, portfolio snapshots (owned by the pipeline area).

Revision ID: 0005_pipeline
Revises: 0004_backtest
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from stockflow.db.base import UTCDateTime  # noqa: F401

revision = "0005_pipeline"
down_revision = "0004_backtest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
