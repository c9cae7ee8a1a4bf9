"""ml tables (owned by the ml area; fill in as its models are added).

Revision ID: 0002_ml
Revises: 0001_data
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from stockflow.db.base import UTCDateTime  # noqa: F401

revision = "0002_ml"
down_revision = "0001_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
