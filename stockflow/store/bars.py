"""Bars in the state store: idempotent writes and the reads every later stage uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.models_data import BarRow
from stockflow.domain.market import BAR_SCHEMA, conform_bars, empty_bars

_CHUNK = 20_000


def store_bars(
    session: Session, bars: pl.DataFrame, *, source: str, ingest_run_id: int | None, timeframe: str = "1Day"
) -> int:
    """Insert ``bars`` (canonical frame), skipping any (symbol, timeframe, session) already stored.

    Runs inside the caller's transaction, so a failure leaves nothing half-written. Returns the number
    of rows actually inserted.
    """
    if bars.is_empty():
        return 0
    bars = conform_bars(bars)
    now = utcnow()
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(BarRow.__table__)
    # RETURNING counts only the rows really inserted, on both backends, even with executemany.
    stmt = ins.on_conflict_do_nothing(index_elements=["symbol", "timeframe", "session"]).returning(
        BarRow.__table__.c.id
    )
    inserted = 0
    for chunk in bars.iter_slices(_CHUNK):
        rows = chunk.with_columns(
            pl.lit(timeframe).alias("timeframe"),
            pl.lit(source).alias("source"),
            pl.lit(ingest_run_id, dtype=pl.Int64).alias("ingest_run_id"),
            pl.lit(False).alias("quarantined"),
        ).to_dicts()
        for r in rows:
            r["ingested_at"] = now
        inserted += len(session.connection().execute(stmt, rows).all())
    return inserted


def latest_sessions(engine: Engine, symbols: Sequence[str] | None = None, timeframe: str = "1Day") -> dict[str, dt.date]:
    """The last stored session per symbol (quarantined bars count: they were fetched)."""
    q = select(BarRow.symbol, func.max(BarRow.session)).where(BarRow.timeframe == timeframe)
    if symbols:
        q = q.where(BarRow.symbol.in_(list(symbols)))
    q = q.group_by(BarRow.symbol)
    with engine.connect() as conn:
        return {s: d for s, d in conn.execute(q)}


def load_bars(
    engine: Engine,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    include_quarantined: bool = False,
    timeframe: str = "1Day",
) -> pl.DataFrame:
    """Stored bars as a canonical polars frame sorted by symbol and session."""
    cols = [getattr(BarRow, c) for c in BAR_SCHEMA]
    q = select(*cols).where(BarRow.timeframe == timeframe)
    if symbols:
        q = q.where(BarRow.symbol.in_(list(symbols)))
    if start:
        q = q.where(BarRow.session >= start)
    if end:
        q = q.where(BarRow.session <= end)
    if not include_quarantined:
        q = q.where(BarRow.quarantined.is_(False))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return empty_bars()
    return conform_bars(pl.DataFrame(rows, schema=BAR_SCHEMA, orient="row"))


def mark_quarantined(session: Session, keys: Sequence[tuple[str, dt.date]], timeframe: str = "1Day") -> int:
    """Flag stored bars (symbol, session) as quarantined so downstream stages skip them."""
    n = 0
    for sym in {k[0] for k in keys}:
        days = [d for s, d in keys if s == sym]
        for i in range(0, len(days), 900):
            res = session.execute(
                update(BarRow)
                .where(BarRow.symbol == sym, BarRow.timeframe == timeframe, BarRow.session.in_(days[i : i + 900]))
                .values(quarantined=True)
            )
            n += res.rowcount or 0
    return n
