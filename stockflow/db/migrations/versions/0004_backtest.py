"""backtest tables (owned by the backtest area; fill in as its models are added).

Revision ID: 0004_backtest
Revises: 0003_trading
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from stockflow.db.base import UTCDateTime  # noqa: F401

revision = "0004_backtest"
down_revision = "0003_trading"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
