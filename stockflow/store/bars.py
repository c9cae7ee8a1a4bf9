"""Bars in the state store: idempotent writes and the reads every later stage uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

import polars as pl
from sqlalchemy import CursorResult, Engine, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.models_data import BarRow
from stockflow.domain.market import BAR_SCHEMA, conform_bars, empty_bars

BARS = cast(Table, BarRow.__table__)

_CHUNK = 20_000
_BULK_CHUNK = 200_000
# Inserting many rows under the (session) index costs far more than rebuilding it: above this many rows
# (and at least half the table) the index is dropped and rebuilt inside the same transaction.
_REBUILD_INDEX_ROWS = 100_000
_INSERT_COLUMNS = (
    "symbol",
    "timeframe",
    "session",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "source",
    "ingest_run_id",
    "ingested_at",
    "quarantined",
)


def _prepare(bars: pl.DataFrame) -> pl.DataFrame:
    """Canonical columns plus a ``quarantined`` flag (False unless given), one row per (symbol, session)."""
    flag = (
        pl.col("quarantined").cast(pl.Boolean).fill_null(False)
        if "quarantined" in bars.columns
        else pl.lit(False)
    )
    out = bars.select([pl.col(c).cast(t) for c, t in BAR_SCHEMA.items()] + [flag.alias("quarantined")])
    sym, ses = pl.col("symbol"), pl.col("session")
    ordered = (sym > sym.shift(1)) | ((sym == sym.shift(1)) & (ses > ses.shift(1)))
    if out.select(ordered.fill_null(True).all()).item():
        return out  # already sorted with one row per key (the ingest's batches are)
    return out.unique(subset=["symbol", "session"], keep="first", maintain_order=True).sort(
        ["symbol", "session"]
    )


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _store_sqlite(
    session: Session,
    frame: pl.DataFrame,
    *,
    source: str,
    ingest_run_id: int | None,
    timeframe: str,
    now: dt.datetime,
) -> int:
    conn = session.connection()
    dialect = conn.dialect
    stamp_proc = BarRow.__table__.c.ingested_at.type.bind_processor(dialect)
    stamp = stamp_proc(now) if stamp_proc else now
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    # A no-op write makes the sqlite3 driver open the transaction now, so that the index DDL below is
    # part of it (the driver only begins transactions before DML).
    cur.execute("UPDATE bars SET quarantined = quarantined WHERE 0")
    rebuild = False
    if frame.height >= _REBUILD_INDEX_ROWS and dbapi.in_transaction:
        existing = cur.execute("SELECT coalesce(max(id), 0) FROM bars").fetchone()[0]
        rebuild = frame.height >= existing / 2
    if rebuild:
        cur.execute("DROP INDEX IF EXISTS ix_bars_session")
    # Per-batch constants go into the statement as literals: fewer parameters to bind per row.
    consts = {
        "timeframe": _sql_text(timeframe),
        "source": _sql_text(source),
        "ingest_run_id": "NULL" if ingest_run_id is None else str(int(ingest_run_id)),
        "ingested_at": _sql_text(str(stamp)),
    }
    values = ", ".join(consts.get(c, "?") for c in _INSERT_COLUMNS)
    sql = (
        f"INSERT INTO bars ({', '.join(_INSERT_COLUMNS)}) VALUES ({values}) "
        "ON CONFLICT (symbol, timeframe, session) DO NOTHING"
    )
    rows = frame.select(
        "symbol",
        pl.col("session").cast(pl.Utf8),
        "open",
        "high",
        "low",
        "close",
        "volume",
        pl.col("quarantined").cast(pl.Int8),
    )
    inserted = 0
    for chunk in rows.iter_slices(_BULK_CHUNK):
        cur.executemany(sql, chunk.rows())
        inserted += max(cur.rowcount, 0)
    if rebuild:
        cur.execute("CREATE INDEX ix_bars_session ON bars (session)")
    cur.close()
    return inserted


def _store_postgres(
    session: Session,
    frame: pl.DataFrame,
    *,
    source: str,
    ingest_run_id: int | None,
    timeframe: str,
    now: dt.datetime,
) -> int:
    dbapi: Any = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cols = ", ".join(_INSERT_COLUMNS)
    with dbapi.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _bars_in (symbol text, timeframe text, session date, "
            "open float8, high float8, low float8, close float8, volume float8, source text, "
            "ingest_run_id integer, ingested_at timestamptz, quarantined boolean) ON COMMIT DROP"
        )
        cur.execute("TRUNCATE _bars_in")
        data = frame.select(
            "symbol",
            pl.lit(timeframe).alias("timeframe"),
            "session",
            "open",
            "high",
            "low",
            "close",
            "volume",
            pl.lit(source).alias("source"),
            pl.lit(ingest_run_id, dtype=pl.Int64).alias("ingest_run_id"),
            pl.lit(now.isoformat()).alias("ingested_at"),
            "quarantined",
        )
        with cur.copy(f"COPY _bars_in ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
            for chunk in data.iter_slices(_BULK_CHUNK):
                copy.write(chunk.write_csv(include_header=False))
        cur.execute(
            f"INSERT INTO bars ({cols}) SELECT {cols} FROM _bars_in "
            "ON CONFLICT (symbol, timeframe, session) DO NOTHING"
        )
        return max(cur.rowcount, 0)


def _store_generic(
    session: Session,
    frame: pl.DataFrame,
    *,
    source: str,
    ingest_run_id: int | None,
    timeframe: str,
    now: dt.datetime,
) -> int:
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(BARS)
    # RETURNING counts only the rows really inserted, on both backends, even with executemany.
    stmt = ins.on_conflict_do_nothing(index_elements=["symbol", "timeframe", "session"]).returning(
        BarRow.__table__.c.id
    )
    inserted = 0
    for chunk in frame.iter_slices(_CHUNK):
        rows = chunk.with_columns(
            pl.lit(timeframe).alias("timeframe"),
            pl.lit(source).alias("source"),
            pl.lit(ingest_run_id, dtype=pl.Int64).alias("ingest_run_id"),
        ).to_dicts()
        for r in rows:
            r["ingested_at"] = now
        inserted += len(session.connection().execute(stmt, rows).all())
    return inserted


def store_bars(
    session: Session, bars: pl.DataFrame, *, source: str, ingest_run_id: int | None, timeframe: str = "1Day"
) -> int:
    """Insert ``bars`` (canonical frame), skipping any (symbol, timeframe, session) already stored.

    An optional boolean ``quarantined`` column stores rows already flagged (kept, excluded downstream).
    Runs inside the caller's transaction, so a failure leaves nothing half-written. Returns the number
    of rows actually inserted. Bulk paths: executemany of a prepared statement on SQLite, COPY on
    PostgreSQL.
    """
    if bars.is_empty():
        return 0
    frame = _prepare(bars)
    now = utcnow()
    dialect = session.get_bind().dialect.name
    writer = {"sqlite": _store_sqlite, "postgresql": _store_postgres}.get(dialect, _store_generic)
    return writer(session, frame, source=source, ingest_run_id=ingest_run_id, timeframe=timeframe, now=now)


def latest_sessions(
    engine: Engine,
    symbols: Sequence[str] | None = None,
    timeframe: str = "1Day",
    *,
    end: dt.date | None = None,
) -> dict[str, dt.date]:
    """The last stored session per symbol (quarantined bars count: they were fetched), on or before
    ``end`` when given (a replay as of that day reads nothing after it). The one "latest session per
    symbol" query of the pipeline."""
    cond = [BarRow.timeframe == timeframe] + ([BarRow.session <= end] if end is not None else [])
    if symbols:
        # One index seek per symbol: a GROUP BY would scan the whole (symbol, timeframe, session) index.
        q = select(func.max(BarRow.session)).where(BarRow.symbol == bindparam("sym"), *cond)
        out: dict[str, dt.date] = {}
        with engine.connect() as conn:
            for sym in dict.fromkeys(symbols):
                last = conn.execute(q, {"sym": sym}).scalar()
                if last is not None:
                    out[sym] = last
        return out
    q_all = select(BarRow.symbol, func.max(BarRow.session)).where(*cond)
    with engine.connect() as conn:
        return {s: d for s, d in conn.execute(q_all.group_by(BarRow.symbol))}


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


def bar_context(
    engine: Engine, symbols: Sequence[str], timeframe: str = "1Day", *, before: dt.date | None = None
) -> pl.DataFrame:
    """Per symbol: the last stored session (quarantined bars count) and the last good close with its
    session, which validation compares the next new bar with, and the median of the last 20 good volumes.
    Columns: symbol, last_session, ref_session, ref_close, ref_volume (symbols with nothing stored are
    absent). With ``before``, only bars before that session count (a re-read window's context)."""
    cut = BarRow.session < before if before is not None else BarRow.session.is_not(None)
    last_q = select(func.max(BarRow.session)).where(
        BarRow.symbol == bindparam("sym"), BarRow.timeframe == timeframe, cut
    )
    ref_q = (
        select(BarRow.session, BarRow.close)
        .where(
            BarRow.symbol == bindparam("sym"),
            BarRow.timeframe == timeframe,
            BarRow.quarantined.is_(False),
            cut,
        )
        .order_by(BarRow.session.desc())
        .limit(1)
    )
    vol_q = (
        select(BarRow.volume)
        .where(
            BarRow.symbol == bindparam("sym"),
            BarRow.timeframe == timeframe,
            BarRow.quarantined.is_(False),
            cut,
        )
        .order_by(BarRow.session.desc())
        .limit(20)
    )
    rows = []
    with engine.connect() as conn:
        for sym in dict.fromkeys(symbols):
            last = conn.execute(last_q, {"sym": sym}).scalar()
            if last is None:
                continue
            ref = conn.execute(ref_q, {"sym": sym}).first()
            vols = sorted(float(v) for v in conn.execute(vol_q, {"sym": sym}).scalars())
            med = vols[len(vols) // 2] if len(vols) >= 5 else None
            rows.append((sym, last, ref[0] if ref else None, ref[1] if ref else None, med))
    schema = {
        "symbol": pl.Utf8,
        "last_session": pl.Date,
        "ref_session": pl.Date,
        "ref_close": pl.Float64,
        "ref_volume": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def mark_quarantined(session: Session, keys: Sequence[tuple[str, dt.date]], timeframe: str = "1Day") -> int:
    """Flag stored bars (symbol, session) as quarantined so downstream stages skip them."""
    n = 0
    for sym in {k[0] for k in keys}:
        days = [d for s, d in keys if s == sym]
        for i in range(0, len(days), 900):
            res: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(BarRow)
                .where(
                    BarRow.symbol == sym, BarRow.timeframe == timeframe, BarRow.session.in_(days[i : i + 900])
                )
                .values(quarantined=True)
            )
            n += res.rowcount or 0
    return n
