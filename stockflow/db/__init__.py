"""State store: SQLAlchemy 2 models, engines, transactions and Alembic migrations."""

from stockflow.db import (  # noqa: F401 (register the tables)
    models_backtest,
    models_data,
    models_live,
    models_ml,
    models_pipeline,
    models_trading,
)
from stockflow.db.base import Base, utcnow
from stockflow.db.engine import get_engine, is_postgres, make_engine, transaction
from stockflow.db.migrate import upgrade

__all__ = ["Base", "get_engine", "is_postgres", "make_engine", "transaction", "upgrade", "utcnow"]
