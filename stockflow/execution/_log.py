"""Logging for the trading layer without importing Prefect where it is not running."""

from __future__ import annotations

import logging
import sys
from typing import Any


def trading_logger(name: str) -> logging.Logger | logging.LoggerAdapter[Any]:
    """Prefect's run logger inside a flow/task run; a plain logger otherwise. Prefect is only asked
    when it is already imported (importing it costs seconds in short CLI commands and workers)."""
    if "prefect" in sys.modules:
        from stockflow.logs import get_logger

        return get_logger(name)
    return logging.getLogger(name)
