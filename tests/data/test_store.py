"""The bulk bar store: big inserts on SQLite rebuild the session index inside the transaction."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlalchemy import Engine, inspect

from stockflow.db import transaction
from stockflow.store.bars import bar_context, latest_sessions, load_bars, store_bars


def _big(n_symbols: int, n_days: int) -> pl.DataFrame:
    days = pl.date_range(dt.date(1990, 1, 1), dt.date(1990, 1, 1) + dt.timedelta(days=n_days - 1), eager=True)
    frames = [
        pl.DataFrame({"symbol": f"S{i:03d}", "session": days}).with_columns(
            pl.lit(10.0 + i).alias("open"),
            pl.lit(11.0 + i).alias("high"),
            pl.lit(9.0 + i).alias("low"),
            pl.lit(10.5 + i).alias("close"),
            pl.lit(1e6).alias("volume"),
        )
        for i in range(n_symbols)
    ]
    return pl.concat(frames)


def _indexes(engine: Engine) -> set[str]:
    return {i["name"] for i in inspect(engine).get_indexes("bars")}


def test_bulk_insert_keeps_index_and_rolls_back_whole(sqlite_engine: Engine) -> None:
    bars = _big(50, 2_400)  # 120k rows: above the index-rebuild threshold
    assert "ix_bars_session" in _indexes(sqlite_engine)
    with pytest.raises(RuntimeError), transaction(sqlite_engine) as s:
        assert store_bars(s, bars, source="test", ingest_run_id=None) == bars.height
        raise RuntimeError("crash after the insert, before commit")
    # The dropped-and-rebuilt index and the rows roll back together.
    assert "ix_bars_session" in _indexes(sqlite_engine) and load_bars(sqlite_engine).is_empty()

    flagged = bars.with_columns((pl.col("session") == dt.date(1990, 1, 5)).alias("quarantined"))
    with transaction(sqlite_engine) as s:
        assert store_bars(s, flagged, source="test", ingest_run_id=None) == bars.height
    assert "ix_bars_session" in _indexes(sqlite_engine)
    assert load_bars(sqlite_engine).height == bars.height - 50
    assert load_bars(sqlite_engine, include_quarantined=True).height == bars.height
    last = dt.date(1990, 1, 1) + dt.timedelta(days=2_399)
    assert latest_sessions(sqlite_engine, ["S001", "NONE"]) == {"S001": last}
    ctx = bar_context(sqlite_engine, ["S002"])
    got = ctx.to_dicts()
    assert got[0].pop("ref_volume") is not None  # median of the last 20 good volumes
    assert got == [{"symbol": "S002", "last_session": last, "ref_session": last, "ref_close": 12.5}]
    with transaction(sqlite_engine) as s:  # idempotent
        assert store_bars(s, bars, source="test", ingest_run_id=None) == 0
