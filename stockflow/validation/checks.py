"""Derived columns the GX suite checks (see ``expectations.bars`` for what each means).

The batch is sorted by symbol and session, so "the previous bar of the same symbol" is the previous row
when its symbol is the same: plain shifts with a mask, no per-group windows (2.7M rows in well under a
second).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from stockflow.calendar import session_positions
from stockflow.sources.base import LOCATION_COL, ROW_COL

ROW_ID = "row_id"

#: Per-symbol context from the store: the last stored session (quarantined or not) and the last good
#: (non-quarantined) close with its session.
CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "last_session": pl.Date(),
    "ref_session": pl.Date(),
    "ref_close": pl.Float64(),
    "ref_volume": pl.Float64(),
}
#: The exchange calendar's first day (stockflow.calendar.CALENDAR_START): no bar is older.
EARLIEST_DATE = dt.date(1900, 1, 1)
_VOLUME_WINDOW = 20


def empty_context() -> pl.DataFrame:
    """No stored history (a cold ingest)."""
    return pl.DataFrame(schema=CONTEXT_SCHEMA)


def _same_symbol(n: int) -> pl.Expr:
    """True where the row ``n`` rows back (n > 0) or ahead (n < 0) has the same symbol."""
    return (pl.col("symbol") == pl.col("symbol").shift(n)).fill_null(False)


def _lag(col: str, n: int) -> pl.Expr:
    """``col`` of the row ``n`` rows back (ahead for n < 0) of the same symbol, else null."""
    return pl.when(_same_symbol(n)).then(pl.col(col).shift(n)).otherwise(None)


def _close_ratio(batch: pl.DataFrame, context: pl.DataFrame, low: float, high: float) -> pl.DataFrame:
    """row_id -> close / reference close. The reference is the previous valid close (the stored one for
    a symbol's first new row), or the one before it when the previous close was an isolated spike."""
    # A row dated outside the calendar (1850) is nobody's neighbour: it must not condemn the real next bar.
    valid = batch.filter(
        pl.col("close").is_finite() & (pl.col("close") > 0) & (pl.col("in_calendar") == 1)
    ).select(ROW_ID, "symbol", "close")
    ctx = context.filter(pl.col("ref_close").is_not_null() & (pl.col("ref_close") > 0)).select(
        "symbol", "ref_close"
    )
    seq = valid.join(ctx, on="symbol", how="left", maintain_order="left").with_columns(
        (~_same_symbol(1)).alias("_first"), (~_same_symbol(1) | ~_same_symbol(2)).alias("_first2")
    )
    c = pl.col("close")
    prev = pl.when(pl.col("_first")).then(pl.col("ref_close")).otherwise(_lag("close", 1))
    # Two back: the stored close when the previous row is the symbol's first new one.
    prev2 = (
        pl.when(pl.col("_first"))
        .then(None)
        .when(pl.col("_first2"))
        .then(pl.col("ref_close"))
        .otherwise(_lag("close", 2))
    )
    seq = seq.with_columns(prev.alias("_prev"), prev2.alias("_prev2"), _lag("close", -1).alias("_next"))
    r_in, r_out = c / pl.col("_prev"), pl.col("_next") / c

    def out(x: pl.Expr) -> pl.Expr:
        return ((x < low) | (x > high)).fill_null(False)

    spike = out(r_in) & out(r_out) & ((r_in < 1) != (r_out < 1)).fill_null(False)
    seq = seq.with_columns(spike.alias("_spike"))
    prev_spike = pl.when(_same_symbol(1)).then(pl.col("_spike").shift(1)).otherwise(False)
    ref = pl.when(prev_spike).then(pl.col("_prev2")).otherwise(pl.col("_prev"))
    return seq.select(ROW_ID, (c / ref).alias("close_ratio"))


def derive_checks(
    batch: pl.DataFrame,
    context: pl.DataFrame,
    *,
    move_bounds: tuple[float, float],
    today: dt.date,
    calendar: str = "XNYS",
    check_calendar: bool = True,
    volume_floor: float = 1e5,
) -> pl.DataFrame:
    """``batch`` (fetch frame sorted by symbol and session, with ``row_id``) plus every check column."""
    low, high = move_bounds
    if "ref_volume" not in context.columns:
        context = context.with_columns(pl.lit(None, dtype=pl.Float64).alias("ref_volume"))
    out = batch.with_columns(
        pl.max_horizontal("open", "close").alias("oc_max"),
        pl.min_horizontal("open", "close").alias("oc_min"),
        (pl.col("session") - pl.lit(today)).dt.total_days().alias("days_ahead"),
    )
    # Before the calendar's start (0001-01-01, 1850) no bar is real; after its end is the future rule's.
    in_cal = out.get_column("session").fill_null(EARLIEST_DATE) >= EARLIEST_DATE
    high_ratio = pl.col("high") / pl.col("oc_max")
    low_ratio = pl.when(pl.col("low") > 0).then(pl.col("oc_min") / pl.col("low")).otherwise(None)
    out = out.with_columns(
        in_cal.cast(pl.Int8).alias("in_calendar"),
        pl.max_horizontal("open", "high", "low", "close").alias("price_max"),
        high_ratio.alias("high_ratio"),
        low_ratio.alias("low_ratio"),
        pl.max_horizontal(high_ratio, low_ratio).alias("hl_ratio"),
    )
    out = _volume_ratio(out, context, volume_floor)
    ratio = _close_ratio(out, context, low, high)
    out = out.join(ratio, on=ROW_ID, how="left", maintain_order="left")

    if check_calendar:
        pos, is_session = session_positions(out.get_column("session"), calendar)
        ctx_pos, _ = session_positions(context.get_column("last_session"), calendar)
        ctx = context.select("symbol").with_columns(ctx_pos.alias("_ctx_pos"))
        out = out.with_columns(pos.alias("_pos"), is_session.alias("is_session")).join(
            ctx, on="symbol", how="left", maintain_order="left"
        )
        prev_pos = pl.when(_same_symbol(1)).then(pl.col("_pos").shift(1)).otherwise(pl.col("_ctx_pos"))
        out = out.with_columns((pl.col("_pos") - prev_pos - 1).alias("sessions_skipped")).drop(
            "_pos", "_ctx_pos"
        )
    else:
        out = out.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("sessions_skipped"),
            pl.lit(None, dtype=pl.Boolean).alias("is_session"),
        )
    return out.with_columns(_file_order(out).alias("in_file_order"))


def _volume_ratio(out: pl.DataFrame, context: pl.DataFrame, floor: float) -> pl.DataFrame:
    """volume / max(median of the symbol's previous volumes, floor): the batch's own history, else the
    stored median (``ref_volume``) for a symbol's first new rows."""
    prior = (
        pl.col("volume").shift(1).rolling_median(_VOLUME_WINDOW, min_samples=5).over("symbol").alias("_vmed")
    )
    ctx = context.select("symbol", "ref_volume")
    out = out.with_columns(prior).join(ctx, on="symbol", how="left", maintain_order="left")
    base = pl.max_horizontal(pl.coalesce("_vmed", "ref_volume"), pl.lit(floor))
    ratio = pl.when(pl.coalesce("_vmed", "ref_volume").is_not_null()).then(pl.col("volume") / base)
    return out.with_columns(ratio.otherwise(None).alias("volume_ratio")).drop("_vmed", "ref_volume")


def _file_order(out: pl.DataFrame) -> pl.Series:
    """Within one file and symbol, rows should move through the file in one direction (ascending or
    descending dates); a row going against the file's dominant direction is out of order."""
    if out.get_column(ROW_COL).null_count() == out.height:
        return pl.Series("in_file_order", [None] * out.height, dtype=pl.Boolean)
    same = _same_symbol(1) & (pl.col(LOCATION_COL) == pl.col(LOCATION_COL).shift(1)).fill_null(False)
    step = pl.when(same).then((pl.col(ROW_COL) - pl.col(ROW_COL).shift(1)).sign()).otherwise(None)
    flags = (
        out.select("symbol", LOCATION_COL, ROW_COL)
        .with_columns(step.alias("_step"))
        .with_columns(pl.col("_step").sum().over(["symbol", LOCATION_COL]).sign().alias("_dir"))
        .select(
            pl.when(pl.col("_step").is_null() | (pl.col("_step") == 0))
            .then(None)
            .otherwise((pl.col("_step") == pl.col("_dir")) | (pl.col("_dir") == 0))
            .alias("in_file_order")
        )
    )
    return flags.get_column("in_file_order")
