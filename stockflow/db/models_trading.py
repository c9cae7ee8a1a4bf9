"""Tables of the trading area (owned by that area; added through migrations like every table)."""

from __future__ import annotations
