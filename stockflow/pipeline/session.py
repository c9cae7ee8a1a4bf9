"""The run's universe and session: which symbols, which session the run expects, which are current.

An empty universe (no ``--symbols`` and an empty ``data.symbols``) means every symbol the source holds:
the ingest fetches them all (``files``: every symbol in the files; ``sample``: the bundled ones) and the
run trades every symbol stored for it afterwards (:func:`stored_symbols`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from stockflow.calendar import last_completed_session, last_session_on_or_before
from stockflow.choices import HISTORICAL_SOURCES
from stockflow.domain.market import normalize_symbol
from stockflow.errors import ConfigError
from stockflow.store.bars import latest_sessions

if TYPE_CHECKING:
    from stockflow.config import Settings


def resolve_symbols(settings: Settings, symbols: Sequence[str] | str | None) -> list[str]:
    """The run's universe: ``symbols`` (list or comma-separated) or ``data.symbols``, normalized; an
    empty list means every symbol the source holds. A malformed symbol raises :class:`DataError`."""
    if isinstance(symbols, str):
        symbols = [s for s in symbols.split(",") if s.strip()]
    raw = list(symbols) if symbols else list(settings.data.symbols)
    return list(dict.fromkeys(normalize_symbol(s) for s in raw))


def stored_symbols(engine: Engine, ingested: Sequence[str] = ()) -> list[str]:
    """Every symbol with stored bars (the universe when none is configured), plus ``ingested``; a
    :class:`ConfigError` when there is none."""
    out = sorted(set(latest_sessions(engine)) | set(ingested))
    if not out:
        raise ConfigError(
            "no symbols to trade: the source gave no bars and none are stored; give --symbols or set "
            "data.symbols"
        )
    return out


@dataclass(frozen=True)
class SessionCheck:
    """Which session the run expects and which symbols have it as their latest bar."""

    expected: dt.date
    latest: dict[str, dt.date]
    fresh: tuple[str, ...]
    stale: dict[str, str]  # symbol -> why
    ok: bool
    message: str


def check_session(
    engine: Engine,
    symbols: Sequence[str],
    *,
    source: str,
    as_of: dt.date | None,
    now: dt.datetime,
) -> SessionCheck:
    """The stale-session guard. Expected session: ``as_of``'s session when given (bars after ``as_of``
    are ignored by the whole run: a replay, meant for fresh state such as demos and tests); else, for
    historical sources (sample, files), the last session in their data; else the last completed XNYS
    session.
    The run is refused (``ok`` false) when no symbol's latest bar is the expected session; single
    stale symbols are listed (risk denies their entries)."""
    latest = latest_sessions(engine, symbols, end=as_of)
    missing = [s for s in symbols if s not in latest]
    if as_of is not None:
        expected = last_session_on_or_before(as_of)
        basis = f"as_of {as_of}"
    elif source in HISTORICAL_SOURCES:
        if not latest:
            return SessionCheck(
                dt.date.min,
                {},
                (),
                {s: "no bars" for s in symbols},
                False,
                f"no bars stored for {', '.join(symbols)}: nothing to trade on",
            )
        expected = max(latest.values())
        basis = f"the last session in the {source} data"
    else:
        expected = last_completed_session(now=now)
        basis = "the last completed XNYS session"
    stale = {s: "no bars stored (unknown symbol or nothing fetched)" for s in missing}
    for s, d in latest.items():
        if d != expected:
            stale[s] = f"latest bar {d}, expected {expected}"
    fresh = tuple(s for s in symbols if s not in stale)
    if not fresh:
        newest = max(latest.values()) if latest else None
        msg = (
            f"stale data: the latest bar is {newest} but the run expects {expected} ({basis}); "
            "refusing to trade on old prices. "
            + ("Ingest bars up to that session." if as_of else "Ingest fresh bars (or pass as_of).")
        )
        return SessionCheck(expected, latest, fresh, stale, False, msg)
    msg = f"expected session {expected} ({basis}); {len(fresh)} of {len(symbols)} symbols are current"
    if stale:
        shown = sorted(stale.items())
        msg += "; stale: " + "; ".join(f"{s}: {w}" for s, w in shown[:20])
        if len(shown) > 20:
            msg += f"; and {len(shown) - 20} more"
    return SessionCheck(expected, latest, fresh, stale, True, msg)
