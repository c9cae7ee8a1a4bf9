"""Data that can be repaired: re-reading a window of stored sessions, restated values, released rows.

An ingest normally keeps only sessions after the last stored one. With ``since`` (``--since DATE``, or
``--full`` for everything) the rows of stored sessions from ``since`` on are read again and compared
with the store (:func:`mark_reread`):

- ``same``: the stored values; validated again for context, never stored or quarantined twice;
- ``changed``: the source now says something else for a stored session. A stored *quarantined* bar whose
  new values pass validation is repaired (released); a good bar whose new values pass is *restated*:
  reported, and replaced only on request (``--replace``). Either way the old values go to the
  ``bar_revisions`` audit table first (:func:`apply_changes`).

A stored session the source now offers for the first time (a gap, or a row that was quarantined without
being stored: a missing value) is simply new. Quarantine rows of every (symbol, session) that now has a
good stored bar are marked released (:func:`release_quarantine`), so the quarantine view shows what is
still open.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, select, tuple_, update
from sqlalchemy.orm import Session

from stockflow.db import utcnow
from stockflow.db.models_data import BarRevision, BarRow, QuarantinedRow
from stockflow.ingest.report import OHLCV, REREAD_COL

_STORED = [f"_s_{c}" for c in OHLCV]
_REL_TOL = 1e-9


def load_stored(engine: Engine, symbols: list[str], since: dt.date, timeframe: str) -> pl.DataFrame:
    """Stored bars of ``symbols`` from ``since`` on, quarantined included, with their ingest run."""
    q = select(
        BarRow.symbol,
        BarRow.session,
        *[getattr(BarRow, c) for c in OHLCV],
        BarRow.quarantined,
        BarRow.ingest_run_id,
    ).where(BarRow.timeframe == timeframe, BarRow.session >= since)
    if symbols:
        q = q.where(BarRow.symbol.in_(symbols))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    schema: dict[str, Any] = {
        "symbol": pl.Utf8,
        "session": pl.Date,
        **{s: pl.Float64 for s in _STORED},
        "_s_quarantined": pl.Boolean,
        "_s_run": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def mark_reread(bars: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """``bars`` with :data:`REREAD_COL` and the stored values (``_s_*``) of the sessions already stored."""
    out = bars.join(stored, on=["symbol", "session"], how="left", maintain_order="left")
    same = pl.all_horizontal(
        (
            (pl.col(c) - pl.col(s)).abs()
            <= _REL_TOL * pl.max_horizontal(pl.col(c).abs(), pl.col(s).abs(), pl.lit(1e-12))
        ).fill_null(False)
        for c, s in zip(OHLCV, _STORED, strict=True)
    )
    kind = (
        pl.when(pl.col("_s_open").is_null())
        .then(None)
        .when(same)
        .then(pl.lit("same"))
        .otherwise(pl.lit("changed"))
    )
    return out.with_columns(kind.alias(REREAD_COL))


def _values(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {c: row[f"{prefix}{c}"] for c in OHLCV}


def describe_change(row: dict[str, Any]) -> str:
    """``AAPL 2024-01-03: close 10.5 -> 10.7, volume 100 -> 120``."""
    diffs = [
        f"{c} {row[f'_s_{c}']:g} -> {row[c]:g}"
        for c in OHLCV
        if row[c] is not None and row[f"_s_{c}"] is not None and row[c] != row[f"_s_{c}"]
    ]
    return f"{row['symbol']} {row['session']}: " + ", ".join(diffs or ["values changed"])


def apply_changes(
    s: Session,
    changed_ok: pl.DataFrame,
    *,
    replace: bool,
    ingest_run_id: int,
    source: str,
    timeframe: str,
) -> tuple[int, int]:
    """Write changed rows that passed validation: a quarantined bar is released (always), a good one is
    replaced only when ``replace``. The old values go to ``bar_revisions`` first. Returns (replaced,
    released)."""
    now = utcnow()
    replaced = released = 0
    for row in changed_ok.iter_rows(named=True):
        was_quarantined = bool(row["_s_quarantined"])
        if not was_quarantined and not replace:
            continue
        s.add(
            BarRevision(
                symbol=row["symbol"],
                timeframe=timeframe,
                session=row["session"],
                reason="released" if was_quarantined else "restated",
                old_values={**_values(row, "_s_"), "quarantined": was_quarantined},
                new_values={**_values(row), "quarantined": False, "source": source},
                old_ingest_run_id=row["_s_run"],
                ingest_run_id=ingest_run_id,
                replaced_at=now,
            )
        )
        s.execute(
            update(BarRow)
            .where(
                BarRow.symbol == row["symbol"],
                BarRow.timeframe == timeframe,
                BarRow.session == row["session"],
            )
            .values(
                **_values(row),
                quarantined=False,
                source=source,
                ingest_run_id=ingest_run_id,
                ingested_at=now,
            )
        )
        if was_quarantined:
            released += 1
        else:
            replaced += 1
    return replaced, released


def release_quarantine(s: Session, keys: pl.DataFrame, ingest_run_id: int) -> int:
    """Mark released the open quarantine rows of (symbol, session) ``keys`` that now hold a good bar."""
    if keys.height == 0:
        return 0
    symbols = keys.get_column("symbol").unique().to_list()
    open_q = select(QuarantinedRow.symbol, QuarantinedRow.session).where(
        QuarantinedRow.released_at.is_(None),
        QuarantinedRow.symbol.in_(symbols),
        QuarantinedRow.session.is_not(None),
        QuarantinedRow.ingest_run_id != ingest_run_id,
    )
    open_keys = pl.DataFrame(
        s.execute(open_q).all(), schema={"symbol": pl.Utf8, "session": pl.Date}, orient="row"
    ).unique()
    hit = open_keys.join(keys.select("symbol", "session").unique(), on=["symbol", "session"], how="inner")
    if hit.height == 0:
        return 0
    pairs = list(hit.iter_rows())
    n = 0
    for i in range(0, len(pairs), 500):
        res: Any = s.execute(
            update(QuarantinedRow)
            .where(
                and_(
                    QuarantinedRow.released_at.is_(None),
                    tuple_(QuarantinedRow.symbol, QuarantinedRow.session).in_(pairs[i : i + 500]),
                )
            )
            .values(released_at=utcnow(), released_by_run=ingest_run_id)
        )
        n += res.rowcount or 0
    return n
