"""Small helpers shared by several test areas."""

from __future__ import annotations

import datetime as dt


def business_days(start: dt.date, n: int) -> list[dt.date]:
    """``n`` weekdays from ``start`` (a stand-in for exchange sessions in synthetic fixtures)."""
    out: list[dt.date] = []
    d = start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out
