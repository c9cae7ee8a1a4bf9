"""trading tables (owned by the trading area; fill in as its models are added).

Revision ID: 0003_trading
Revises: 0002_ml
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from stockflow.db.base import UTCDateTime  # noqa: F401

revision = "0003_trading"
down_revision = "0002_ml"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
