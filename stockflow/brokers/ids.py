"""Deterministic client order ids: the same run, session, symbol, side and purpose always give the same
id, so that a retry or a restart can never create a second order for one decision."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from stockflow.domain.orders import Side

_SAFE = re.compile(r"[^A-Z0-9]")


def client_order_id(
    run_id: str,
    session: dt.date,
    symbol: str,
    side: Side | str,
    purpose: str = "entry",
    *,
    intent: str = "",
) -> str:
    """``sf-<yyyymmdd>-<SYMBOL>-<b|s>-<purpose>-<12 hex>``, at most 64 characters (Alpaca allows 128).

    The hash covers every input, so two runs (``run_id``) never collide while the readable prefix lets a
    person recognise the order in the broker's UI. ``purpose`` separates orders of one run for the same
    symbol and side (``entry``, ``exit``, ``stop``, ``flatten``). Callers that must survive a restart of
    the whole run (not just a retry) pass a ``run_id`` that is stable across restarts, e.g. the Prefect
    flow run id (unchanged on retries) or ``trade-<session>``.

    ``intent`` (hashed too) separates intents that share all of the above, e.g. a protective stop and
    its replacement: Alpaca keeps an id forever, even after a cancel, so a replacement needs its own
    (see :func:`stockflow.execution.intents.intent_order_id`).
    """
    if not run_id:
        raise ValueError("run_id is required for a client order id")
    side_v = Side(side).value
    if not re.fullmatch(r"[a-z0-9_]{1,12}", purpose):
        raise ValueError(f"purpose must be 1-12 of [a-z0-9_], got {purpose!r}")
    key = f"{run_id}|{session.isoformat()}|{symbol}|{side_v}|{purpose}"
    if intent:
        key += f"|{intent}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    readable_symbol = _SAFE.sub("_", symbol.upper())[:10]
    return f"sf-{session:%Y%m%d}-{readable_symbol}-{side_v[0]}-{purpose}-{digest[:12]}"
