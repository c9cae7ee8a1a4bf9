"""The one exchange calendar of stockflow: sessions (exchange_calendars) as a sorted numpy array, built
once and cached on disk, and the questions every stage asks of it (the last completed session, the last
session on or before a day, where a date sits in the session list).

Building the XNYS calendar from 1900 takes a second or two per process; the session list is cached
as a small .npy file under ``$XDG_CACHE_HOME/stockflow`` (``~/.cache/stockflow``), keyed by the
calendar, the exchange_calendars version and the year, so that a new release or a new year rebuilds it.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR_START = "1900-01-01"
#: A daily bar is complete once the regular session has closed (early closes wait until this too).
SESSION_CLOSE = dt.time(16, 15)


def _cache_file(name: str, end: dt.date) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stockflow"
    return root / f"sessions-{name}-{CALENDAR_START}-{end}-xc{version('exchange-calendars')}.npy"


@lru_cache(maxsize=4)
def sessions(name: str = "XNYS") -> np.ndarray:
    """Every session of calendar ``name`` from 1900 to the end of next year, sorted ``datetime64[D]``."""
    end = dt.date(dt.date.today().year + 1, 12, 31)
    path = _cache_file(name, end)
    try:
        return np.asarray(np.load(path))
    except (OSError, ValueError):
        pass
    import exchange_calendars as xc

    cal = xc.get_calendar(name, start=CALENDAR_START, end=end.isoformat())
    arr = np.asarray(cal.sessions.values.astype("datetime64[D]"))
    try:  # best effort: a read-only home only costs the rebuild next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)
    except OSError:
        pass
    return arr


def last_completed_session(name: str = "XNYS", now: dt.datetime | None = None) -> dt.date:
    """The last session whose daily bar is complete at ``now`` (default: now): today after the close,
    else the previous session. A bar for any later session is partial or in the future."""
    now_ny = (now or dt.datetime.now(dt.UTC)).astimezone(NEW_YORK)
    arr = sessions(name)
    today = np.datetime64(now_ny.date())
    done = arr[arr <= today] if now_ny.time() >= SESSION_CLOSE else arr[arr < today]
    return dt.date.fromisoformat(str(done[-1]))


def last_session_on_or_before(day: dt.date, name: str = "XNYS") -> dt.date:
    """The last session of ``name`` on or before ``day``; :class:`ConfigError` outside the calendar."""
    from stockflow.errors import ConfigError

    arr = sessions(name)
    d = np.datetime64(day)
    if d < arr[0] or d > arr[-1]:
        raise ConfigError(
            f"{day} is outside the {name} calendar ({arr[0]} .. {arr[-1]}); choose a date inside it"
        )
    return dt.date.fromisoformat(str(arr[np.searchsorted(arr, d, side="right") - 1]))


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
