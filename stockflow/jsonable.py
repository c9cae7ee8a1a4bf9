"""The one conversion of results to plain JSON types, for JSON columns, model cards and run records."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """Plain JSON types: mappings (keys as text) and sequences recursively, numpy scalars to Python,
    non-finite floats to None, dates to ISO text, anything else to its text."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return str(obj)
