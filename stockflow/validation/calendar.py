"""Exchange sessions (exchange_calendars) as a sorted numpy array, built once per process."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR_START = "1900-01-01"


@lru_cache(maxsize=4)
def _calendar(name: str) -> object:
    import exchange_calendars as xc

    end = (dt.date.today() + dt.timedelta(days=366)).isoformat()
    return xc.get_calendar(name, start=CALENDAR_START, end=end)


@lru_cache(maxsize=4)
def sessions(name: str = "XNYS") -> np.ndarray:
    """Every session of calendar ``name`` from 1900 to a year ahead, as sorted ``datetime64[D]``."""
    cal = _calendar(name)
    return np.asarray(cal.sessions.values.astype("datetime64[D]"))  # type: ignore[attr-defined]


def last_completed_session(name: str = "XNYS", now: dt.datetime | None = None) -> dt.date:
    """The last session whose close is at or before ``now`` (default: now). A daily bar for any later
    session is partial or in the future."""
    import pandas as pd

    cal = _calendar(name)
    ts = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    close = cal.previous_close(ts.floor("min"))  # type: ignore[attr-defined]
    return close.tz_convert(NEW_YORK).date()  # type: ignore[no-any-return]


def session_positions(dates: pl.Series, name: str = "XNYS") -> tuple[pl.Series, pl.Series]:
    """For each date: its position in the session list (the next session's for a non-session day) and
    whether it is a session; both null outside the calendar's range."""
    arr = sessions(name)
    d = dates.cast(pl.Date).to_numpy().astype("datetime64[D]")
    pos = np.searchsorted(arr, d)
    clipped = np.minimum(pos, len(arr) - 1)
    is_session = arr[clipped] == d
    in_range = (d >= arr[0]) & (d <= arr[-1])
    null = dates.is_null().to_numpy()
    is_session_s = pl.Series("is_session", is_session).set(pl.Series(~in_range | null), None)  # type: ignore[arg-type]
    pos_s = pl.Series("pos", pos.astype(np.int64)).set(pl.Series(~in_range | null), None)  # type: ignore[arg-type]
    return pos_s, is_session_s
