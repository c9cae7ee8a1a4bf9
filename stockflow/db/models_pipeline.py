"""Tables of the pipeline area: signals, approvals, portfolio snapshots."""

from __future__ import annotations
