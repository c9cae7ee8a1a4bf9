"""Derived columns the GX suite checks (see ``expectations.bars`` for what each means)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from stockflow.sources.base import LOCATION_COL, ROW_COL
from stockflow.validation.calendar import session_positions

ROW_ID = "row_id"

#: Per-symbol context from the store: the last stored session (quarantined or not) and the last good
#: (non-quarantined) close with its session.
CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "last_session": pl.Date(),
    "ref_session": pl.Date(),
    "ref_close": pl.Float64(),
}


def empty_context() -> pl.DataFrame:
    """No stored history (a cold ingest)."""
    return pl.DataFrame(schema=CONTEXT_SCHEMA)


def _close_ratio(batch: pl.DataFrame, context: pl.DataFrame, low: float, high: float) -> pl.DataFrame:
    """row_id -> close / reference close, skipping an isolated spike as the reference."""
    valid = batch.filter(pl.col("close").is_finite() & (pl.col("close") > 0)).select(
        ROW_ID, "symbol", "session", "close"
    )
    ctx = context.filter(pl.col("ref_close").is_not_null() & (pl.col("ref_close") > 0)).select(
        pl.lit(None, dtype=pl.UInt32).alias(ROW_ID),
        "symbol",
        pl.col("ref_session").alias("session"),
        pl.col("ref_close").alias("close"),
    )
    seq = pl.concat([ctx, valid.with_columns(pl.col(ROW_ID).cast(pl.UInt32))]).sort(
        ["symbol", "session", ROW_ID], nulls_last=False
    )
    c = pl.col("close")
    prev, prev2, nxt = (c.shift(n).over("symbol") for n in (1, 2, -1))
    r_in, r_out = c / prev, nxt / c

    def out(x: pl.Expr) -> pl.Expr:
        return ((x < low) | (x > high)).fill_null(False)

    spike = out(r_in) & out(r_out) & ((r_in < 1) != (r_out < 1)).fill_null(False)
    seq = seq.with_columns(spike.alias("_spike"))
    ref = pl.when(pl.col("_spike").shift(1).over("symbol").fill_null(False)).then(prev2).otherwise(prev)
    return (
        seq.with_columns((c / ref).alias("close_ratio"))
        .filter(pl.col(ROW_ID).is_not_null())
        .select(pl.col(ROW_ID).cast(pl.UInt32), "close_ratio")
    )


def derive_checks(
    batch: pl.DataFrame,
    context: pl.DataFrame,
    *,
    move_bounds: tuple[float, float],
    today: dt.date,
    calendar: str = "XNYS",
    check_calendar: bool = True,
) -> pl.DataFrame:
    """``batch`` (fetch frame, sorted, with ``row_id``) plus every derived check column."""
    low, high = move_bounds
    out = batch.with_columns(
        pl.max_horizontal("open", "close").alias("oc_max"),
        pl.min_horizontal("open", "close").alias("oc_min"),
        (pl.col("session") - pl.lit(today)).dt.total_days().alias("days_ahead"),
    )
    ratio = _close_ratio(out.with_columns(pl.col(ROW_ID).cast(pl.UInt32)), context, low, high)
    out = out.join(ratio, on=ROW_ID, how="left", maintain_order="left")

    if check_calendar:
        pos, is_session = session_positions(out.get_column("session"), calendar)
        ctx_pos, _ = session_positions(context.get_column("last_session"), calendar)
        ctx = context.select("symbol").with_columns(ctx_pos.alias("_ctx_pos"))
        out = out.with_columns(pos.alias("_pos"), is_session.alias("is_session")).join(
            ctx, on="symbol", how="left", maintain_order="left"
        )
        prev_pos = pl.col("_pos").shift(1).over("symbol")
        first = pl.col(ROW_ID) == pl.col(ROW_ID).first().over("symbol")
        prev_pos = pl.when(first).then(pl.col("_ctx_pos")).otherwise(prev_pos)
        out = out.with_columns((pl.col("_pos") - prev_pos - 1).alias("sessions_skipped")).drop(
            "_pos", "_ctx_pos"
        )
    else:
        out = out.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("sessions_skipped"),
            pl.lit(None, dtype=pl.Boolean).alias("is_session"),
        )

    # File order: within one file and symbol, rows should move through the file in one direction
    # (ascending or descending dates); a row going against the file's dominant direction is out of order.
    group = ["symbol", LOCATION_COL]
    step = (pl.col(ROW_COL) - pl.col(ROW_COL).shift(1)).over(group).sign()
    out = (
        out.with_columns(step.alias("_step"))
        .with_columns(pl.col("_step").sum().over(group).sign().alias("_dir"))
        .with_columns(
            pl.when(pl.col("_step").is_null() | (pl.col("_step") == 0))
            .then(None)
            .otherwise((pl.col("_step") == pl.col("_dir")) | (pl.col("_dir") == 0))
            .alias("in_file_order")
        )
        .drop("_step", "_dir")
    )
    return out
