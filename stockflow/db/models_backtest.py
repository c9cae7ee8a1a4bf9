"""Tables of the backtest area (owned by that area; added through migrations like every table)."""

from __future__ import annotations
