"""Tables of the ml area (owned by that area; added through migrations like every table)."""

from __future__ import annotations
