"""Quarantine records: why each row was refused, and which were already refused by an earlier run."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from stockflow.db.models_data import QuarantinedRow
from stockflow.ingest.report import NOT_STORED_RULES, OHLCV, REREAD_COL, Batch
from stockflow.sources import Reject
from stockflow.sources.base import LOCATION_COL, ROW_COL
from stockflow.validation import ROW_ID, ValidationOutcome


def _describe(rule: str, row: dict[str, Any], ctx: dict[str, Any]) -> str:
    from expectations.bars import RULES

    desc = next((r.description for r in RULES if r.name == rule), rule)
    values = ", ".join(f"{k}={row.get(k)}" for k in OHLCV)
    extra = ""
    if rule == "daily_move_bound" and "close_ratio" in ctx:
        extra = f"; close/previous close = {ctx['close_ratio']:.4g}"
    elif rule == "not_in_future":
        extra = f"; dated {ctx.get('days_ahead')} days ahead"
    elif rule == "session_day":
        extra = "; not an exchange session"
    elif rule == "date_in_calendar":
        extra = "; dated before the exchange calendar starts (1900)"
    elif rule == "high_low_range":
        hi, lo = ctx.get("high_ratio") or 0.0, ctx.get("low_ratio") or 0.0
        extra = f"; high/max(open,close)={hi:.4g}, min(open,close)/low={lo:.4g}"
    elif rule == "volume_bound" and ctx.get("volume_ratio") is not None:
        extra = f"; volume / its recent median = {ctx['volume_ratio']:.4g}"
    return f"breaks '{desc}' ({values}){extra}"


def quarantine_records(batch: Batch, outcome: ValidationOutcome | None) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    for r in batch.rejects:
        recs.append(
            dict(
                source=batch.source,
                location=r.location,
                row_number=r.row,
                symbol=r.symbol,
                session=r.session,
                rule=r.rule,
                severity="error",
                detail=r.detail,
                raw={k: v for k, v in r.raw.items()},
            )
        )
    if outcome and outcome.row_rules:
        flagged = batch.bars.filter(pl.col(ROW_ID).is_in(list(outcome.row_rules)))
        if REREAD_COL in flagged.columns:  # a stored session read again unchanged was judged before
            flagged = flagged.filter(pl.col(REREAD_COL).fill_null("") != "same")
        for row in flagged.iter_rows(named=True):
            rid = int(row[ROW_ID])
            raw = {k: row[k] for k in ("symbol", *OHLCV)}
            raw["session"] = row["session"].isoformat() if row["session"] else None
            for rule in outcome.row_rules[rid]:
                recs.append(
                    dict(
                        source=batch.source,
                        location=row[LOCATION_COL],
                        row_number=row[ROW_COL],
                        symbol=row["symbol"],
                        session=row["session"],
                        rule=rule,
                        severity="error",
                        detail=_describe(rule, row, outcome.row_context.get(rid, {})),
                        raw=raw,
                    )
                )
    return recs


def example_text(recs: list[dict[str, Any]], rule: str, n: int = 3) -> str:
    shown = []
    for rec in (r for r in recs if r["rule"] == rule):
        where = rec["location"] or ""
        if rec["row_number"] is not None:
            where += f" row {rec['row_number']}"
        shown.append(f"{where} {rec['symbol'] or ''} {rec['session'] or ''}: {rec['detail']}".strip())
        if len(shown) == n:
            break
    return "; ".join(shown)


def drop_known_bad_rows(engine: Engine, bars: pl.DataFrame) -> pl.DataFrame:
    """File rows an earlier run quarantined without storing them (missing value, future date) are not
    judged again while the file still holds the same values at the same row."""
    located = bars.filter(pl.col(ROW_COL).is_not_null())
    if located.height == 0:
        return bars
    q = select(QuarantinedRow.location, QuarantinedRow.row_number, QuarantinedRow.raw).where(
        QuarantinedRow.location.in_(located.get_column(LOCATION_COL).unique().to_list()),
        QuarantinedRow.rule.in_(list(NOT_STORED_RULES)),
    )
    with engine.connect() as conn:
        known = {
            (loc, row, raw.get("symbol"), raw.get("session"), *(raw.get(c) for c in OHLCV))
            for loc, row, raw in conn.execute(q)
        }
    if not known:
        return bars
    keys = [
        (r[LOCATION_COL], r[ROW_COL], r["symbol"], r["session"].isoformat(), *(r[c] for c in OHLCV))
        for r in bars.select(LOCATION_COL, ROW_COL, "symbol", "session", *OHLCV).iter_rows(named=True)
    ]
    return bars.filter(pl.Series([k not in known for k in keys]))


def drop_known_rejects(engine: Engine, rejects: list[Reject]) -> list[Reject]:
    """Unparseable rows of a file that an earlier run already quarantined are not quarantined twice."""
    locations = {r.location for r in rejects if r.row is not None}
    if not locations:
        return rejects
    q = select(QuarantinedRow.location, QuarantinedRow.row_number, QuarantinedRow.rule).where(
        QuarantinedRow.location.in_(list(locations))
    )
    with engine.connect() as conn:
        known = {tuple(r) for r in conn.execute(q)}
    return [r for r in rejects if (r.location, r.row, r.rule) not in known]
