"""Ingest: fetch -> validate -> store (bars and quarantine in one transaction), as plain functions.

``run_ingest`` chains the stages; the Prefect flow ``flows.ingest.ingest_flow`` calls the same stages as
tasks. The order is deliberate: a batch is validated *before* anything is written, and its bars, the
quarantine flags and rows, the validation summary and the run's final state are written in one
transaction. A crash at any point leaves either the whole batch or nothing, never unvalidated bars that
downstream stages would read.

Incremental and idempotent: only bars newer than the last stored session of each symbol are kept
(remote sources are only asked for those), and inserts skip what is already stored.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select, update

from stockflow.config import Settings
from stockflow.db import transaction, utcnow
from stockflow.db.models_data import IngestRun, QuarantinedRow, ValidationResult
from stockflow.domain.market import normalize_symbol
from stockflow.errors import SourceError, ValidationFailedError
from stockflow.logs import get_logger
from stockflow.sources import DataSource, FetchResult, Reject, get_source
from stockflow.sources.base import LOCATION_COL, ROW_COL, empty_fetch_frame, merge_results
from stockflow.store.bars import bar_context, latest_sessions, store_bars
from stockflow.validation import (
    ROW_ID,
    ValidationOutcome,
    is_sorted_by_symbol_session,
    report_url,
    validate_batch,
)
from stockflow.validation.calendar import last_completed_session
from stockflow.validation.checks import empty_context

OHLCV = ("open", "high", "low", "close", "volume")
#: Rows breaking these rules are kept only in the quarantine table, not as (quarantined) bars: a bar with
#: a missing value cannot be stored, and a bar dated in the future would move the incremental cursor.
NOT_STORED_RULES = frozenset({"not_null", "not_in_future"})
_MAX_ERRORS_SHOWN = 5


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did (the contract other areas rely on; extra fields have defaults)."""

    ingest_run_id: int
    source: str
    symbols_ok: tuple[str, ...]
    symbols_failed: dict[str, str]
    rows_fetched: int
    rows_stored: int
    rows_quarantined: int
    quarantined_by_rule: dict[str, int]
    data_docs_path: str | None
    failed_share: float
    rows_new: int = 0
    warnings_by_rule: dict[str, int] = field(default_factory=dict)
    raw_path: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        out = [
            f"ingest run {self.ingest_run_id} ({self.source}): {len(self.symbols_ok)} symbols ok, "
            f"{len(self.symbols_failed)} failed",
            f"rows: {self.rows_fetched:,} fetched, {self.rows_new:,} new, {self.rows_stored:,} stored, "
            f"{self.rows_quarantined:,} quarantined ({self.failed_share:.3%})",
        ]
        if self.quarantined_by_rule:
            out.append(
                "quarantined by rule: "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined_by_rule.items()))
            )
        if self.warnings_by_rule:
            out.append("warnings: " + ", ".join(f"{k}={v}" for k, v in sorted(self.warnings_by_rule.items())))
        for sym, err in list(self.symbols_failed.items())[:_MAX_ERRORS_SHOWN]:
            out.append(f"failed {sym}: {err}")
        if len(self.symbols_failed) > _MAX_ERRORS_SHOWN:
            out.append(f"... and {len(self.symbols_failed) - _MAX_ERRORS_SHOWN} more failures")
        if self.data_docs_path:
            out.append(f"data docs: {self.data_docs_path}")
        return out

    def to_markdown(self, settings: Settings | None = None) -> str:
        """The summary as markdown (the Prefect artifact)."""
        md = [
            f"## Ingest run {self.ingest_run_id} — source `{self.source}`",
            "",
            "| rows fetched | rows new | rows stored | rows quarantined | quarantined share |",
            "| ---: | ---: | ---: | ---: | ---: |",
            f"| {self.rows_fetched:,} | {self.rows_new:,} | {self.rows_stored:,} | {self.rows_quarantined:,} "
            f"| {self.failed_share:.3%} |",
            "",
            f"Symbols ok: {len(self.symbols_ok)}; failed: {len(self.symbols_failed)}",
        ]
        if self.quarantined_by_rule:
            md += ["", "### Quarantined per rule", "", "| rule | rows |", "| --- | ---: |"]
            md += [f"| {k} | {v:,} |" for k, v in sorted(self.quarantined_by_rule.items())]
        if self.warnings_by_rule:
            md += ["", "### Warnings (stored, not blocking)", "", "| rule | rows |", "| --- | ---: |"]
            md += [f"| {k} | {v:,} |" for k, v in sorted(self.warnings_by_rule.items())]
        if self.symbols_failed:
            md += ["", "### Failed symbols / files", "", "| symbol or file | error |", "| --- | --- |"]
            md += [f"| {k} | {v.replace('|', '/')} |" for k, v in self.symbols_failed.items()]
        if self.data_docs_path:
            url = report_url(settings, self.data_docs_path) if settings else self.data_docs_path
            md += ["", f"Data Docs: [{url}]({url}) (file: `{self.data_docs_path}`)"]
        return "\n".join(md)


@dataclass(frozen=True)
class Batch:
    """The new rows of one ingest, ready to validate: sorted by symbol and session, with ``row_id``."""

    ingest_run_id: int
    source: str
    bars: pl.DataFrame
    rejects: tuple[Reject, ...]
    errors: dict[str, str]
    raw_path: str | None
    rows_fetched: int
    symbols: tuple[str, ...]
    context: pl.DataFrame
    seconds: float = 0.0


def resolve_symbols(settings: Settings, source: str, symbols: list[str] | None) -> list[str] | None:
    """The symbols to ingest. ``None`` means every symbol the source offers: the default for ``files``
    when data.symbols was not set explicitly (a directory or file defines its own universe)."""
    if symbols:
        return [normalize_symbol(s) for s in symbols]
    if source == "files" and "symbols" not in settings.data.model_fields_set:
        return None
    return [normalize_symbol(s) for s in settings.data.symbols] or None


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def resolve_window(
    settings: Settings, start: dt.date | str | None, end: dt.date | str | None, path: str | None
) -> tuple[dt.date | None, dt.date | None, str | None]:
    """Start, end and path, defaulting to the settings (data.start, data.end, data.path)."""
    return (
        _date(start) or _date(settings.data.start),
        _date(end) or _date(settings.data.end),
        path or settings.data.path,
    )


def begin_ingest(
    settings: Settings,
    engine: Engine,
    *,
    source: str,
    symbols: list[str] | None = None,
    path: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    flow_run_id: str | None = None,
) -> int:
    """Record a new ingest run (status ``running``) and return its id."""
    params = {
        "symbols": symbols,
        "path": path,
        "start": str(start) if start else None,
        "end": str(end) if end else None,
    }
    with transaction(engine) as s:
        run = IngestRun(
            flow_run_id=flow_run_id,
            source=source,
            params=params,
            status="running",
            started_at=utcnow(),
            symbols_requested=len(symbols or []),
            symbols_ok=0,
            rows_fetched=0,
            rows_stored=0,
            rows_quarantined=0,
            errors=[],
            summary={},
        )
        s.add(run)
        s.flush()
        return int(run.id)


def fail_ingest(engine: Engine, ingest_run_id: int, error: BaseException | str) -> None:
    """Mark a run failed with the reason (its own small transaction; nothing else is written)."""
    with transaction(engine) as s:
        s.execute(
            update(IngestRun)
            .where(IngestRun.id == ingest_run_id, IngestRun.status == "running")
            .values(status="failed", finished_at=utcnow(), error=str(error)[:4000])
        )


def _fetch_remote(
    src: DataSource, engine: Engine, symbols: list[str], start: dt.date | None, end: dt.date | None
) -> tuple[FetchResult, int]:
    """Ask a remote source only for what is missing: symbols grouped by their first missing session.
    Returns the result and how many symbols are up to date (nothing after their last stored bar)."""
    last = latest_sessions(engine, symbols)
    cap = last_completed_session()
    end = min(end, cap) if end else cap
    groups: dict[dt.date | None, list[str]] = {}
    up_to_date = 0
    for sym in symbols:
        first = last[sym] + dt.timedelta(days=1) if sym in last else start
        if start and first and first < start:
            first = start
        if first is not None and first > end:
            up_to_date += 1  # nothing to ask for
            continue
        groups.setdefault(first, []).append(sym)
    if not groups:
        return FetchResult(bars=empty_fetch_frame()), up_to_date
    res = merge_results([src.fetch(syms, first, end) for first, syms in sorted(groups.items(), key=str)])
    # A symbol already stored for which the source has nothing after its last bar is up to date (the
    # next session's bars are not published yet, say): a normal day, not a failure.
    current = [s for s in res.empty if s in last]
    if current:
        get_logger().info("%d symbol(s) up to date: no bar after their last stored one", len(current))
        errors = {k: v for k, v in res.errors.items() if k not in current}
        empty = tuple(s for s in res.empty if s not in current)
        res = replace(res, errors=errors, empty=empty)
    return res, up_to_date + len(current)


def _split_exact_duplicates(bars: pl.DataFrame) -> tuple[pl.DataFrame, list[Reject]]:
    """Keep the first of identical rows; later identical copies become ``duplicate_row`` rejects."""
    keys = ["symbol", "session", *OHLCV]
    # Sorted by (symbol, session): a repeated key sits right after the previous row. Cheap check first.
    repeated = (pl.col("symbol") == pl.col("symbol").shift(1)) & (
        pl.col("session") == pl.col("session").shift(1)
    )
    if not bars.select(repeated.any()).item():
        return bars, []
    first = pl.struct(keys).is_first_distinct()
    extra = bars.filter(~first)
    rejects = [
        Reject(
            location=r[LOCATION_COL] or "",
            row=r[ROW_COL],
            symbol=r["symbol"],
            rule="duplicate_row",
            detail=f"exact copy of another {r['symbol']} bar for {r['session']}; the first copy is kept",
            raw={k: (str(r[k]) if r[k] is not None else None) for k in keys},
            session=r["session"],
        )
        for r in extra.iter_rows(named=True)
    ]
    return bars.filter(first), rejects


def fetch_stage(
    settings: Settings,
    engine: Engine,
    ingest_run_id: int,
    *,
    source: str,
    symbols: list[str] | None = None,
    path: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    http_session: Any = None,
) -> Batch:
    """Fetch from ``source`` and keep only what is new. Raises :class:`SourceError` when nothing at all
    could be fetched (every symbol or file failed), :class:`RetryableError` on transient failures."""
    t0 = time.perf_counter()
    log = get_logger()
    raw_dir = settings.data_dir / "raw" / str(ingest_run_id)
    src = get_source(source, settings, path, raw_dir=raw_dir, session=http_session)
    wanted = resolve_symbols(settings, source, symbols)
    up_to_date = 0
    if src.local:
        result = src.fetch(wanted, start, end)
    else:
        if not wanted:
            raise SourceError(f"the {source} source needs symbols (--symbols or settings data.symbols)")
        result, up_to_date = _fetch_remote(src, engine, wanted, start, end)
    bars = result.bars
    if bars.height == 0 and result.errors and not result.rejects and not up_to_date:
        shown = "; ".join(f"{k}: {v}" for k, v in list(result.errors.items())[:_MAX_ERRORS_SHOWN])
        raise SourceError(f"{source}: nothing could be fetched ({len(result.errors)} failures): {shown}")
    if bars.height == 0 and not result.errors and not result.rejects and src.local:
        log.info("%s: no rows in the requested range", source)
    rows_fetched = bars.height
    fetched_symbols = sorted(
        set(bars.get_column("symbol").unique().to_list()) | {r.symbol for r in result.rejects if r.symbol}
    )

    # Incremental: drop what is already stored (quarantined bars count: they were fetched before).
    last = latest_sessions(engine, fetched_symbols or None)
    if last:
        last_df = pl.DataFrame(
            {"symbol": list(last), "_last": list(last.values())}, schema={"symbol": pl.Utf8, "_last": pl.Date}
        )
        bars = (
            bars.join(last_df, on="symbol", how="left", maintain_order="left")
            .filter(pl.col("_last").is_null() | (pl.col("session") > pl.col("_last")))
            .drop("_last")
        )
    rejects = [
        r
        for r in result.rejects
        if not (r.symbol in last and r.session is not None and r.session <= last[r.symbol])
    ]
    rejects = _drop_known_rejects(engine, rejects)
    bars = _drop_known_bad_rows(engine, bars)
    if not is_sorted_by_symbol_session(bars):  # files are usually sorted already: skip a 2.7M-row sort
        bars = bars.sort(["symbol", "session", LOCATION_COL, ROW_COL], nulls_last=True)
    bars, dup_rejects = _split_exact_duplicates(bars)
    rejects += dup_rejects
    bars = bars.with_row_index(ROW_ID)
    new_symbols = bars.get_column("symbol").unique().to_list()
    context = bar_context(engine, new_symbols) if new_symbols else empty_context()
    ok = tuple(s for s in fetched_symbols if s not in result.errors)
    log.info(
        "%s: fetched %s rows for %d symbols, %s new, %d rejected rows, %d failures",
        source,
        f"{rows_fetched:,}",
        len(ok),
        f"{bars.height:,}",
        len(rejects),
        len(result.errors),
    )
    return Batch(
        ingest_run_id=ingest_run_id,
        source=source,
        bars=bars,
        rejects=tuple(rejects),
        errors=dict(result.errors),
        raw_path=result.raw_path,
        rows_fetched=rows_fetched,
        symbols=ok,
        context=context,
        seconds=time.perf_counter() - t0,
    )


def validate_stage(settings: Settings, batch: Batch) -> ValidationOutcome | None:
    """Run the GX checkpoint over the new rows (None when there are none)."""
    if batch.bars.height == 0:
        return None
    outcome, _ = validate_batch(settings, batch.bars, batch.context, run_name=f"ingest-{batch.ingest_run_id}")
    log = get_logger()
    for r in outcome.rules:
        if r.unexpected_count:
            log.info("rule %s (%s): %d of %d rows", r.rule, r.severity, r.unexpected_count, r.element_count)
    return outcome


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
    return f"breaks '{desc}' ({values}){extra}"


def _quarantine_records(batch: Batch, outcome: ValidationOutcome | None) -> list[dict[str, Any]]:
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


def _example_text(recs: list[dict[str, Any]], rule: str, n: int = 3) -> str:
    shown = []
    for rec in (r for r in recs if r["rule"] == rule):
        where = rec["location"] or ""
        if rec["row_number"] is not None:
            where += f" row {rec['row_number']}"
        shown.append(f"{where} {rec['symbol'] or ''} {rec['session'] or ''}: {rec['detail']}".strip())
        if len(shown) == n:
            break
    return "; ".join(shown)


def _write_results(
    s: Any, ingest_run_id: int, outcome: ValidationOutcome | None, recs: list[dict[str, Any]]
) -> None:
    if outcome is not None:
        for r in outcome.rules:
            s.add(
                ValidationResult(
                    ingest_run_id=ingest_run_id,
                    suite=outcome.suite,
                    rule=r.rule,
                    severity=r.severity,
                    success=r.success,
                    element_count=r.element_count,
                    unexpected_count=r.unexpected_count,
                    unexpected_percent=r.unexpected_percent,
                    details=r.summary(),
                    data_docs_path=outcome.data_docs_path,
                    created_at=utcnow(),
                )
            )
    if recs:
        now = utcnow()
        s.execute(
            insert(QuarantinedRow),
            [{**rec, "ingest_run_id": ingest_run_id, "created_at": now} for rec in recs],
        )


def _drop_known_bad_rows(engine: Engine, bars: pl.DataFrame) -> pl.DataFrame:
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


def _drop_known_rejects(engine: Engine, rejects: list[Reject]) -> list[Reject]:
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


def store_stage(
    settings: Settings, engine: Engine, batch: Batch, outcome: ValidationOutcome | None
) -> IngestReport:
    """Write the batch: bars (flagged rows kept as quarantined), quarantine rows, validation summary and
    the run's final state, in one transaction. When the quarantined share passes the threshold, only the
    run's verdict, the summary and the quarantine rows are written, and :class:`ValidationFailedError`
    names the rules and example rows."""
    t0 = time.perf_counter()
    log = get_logger()
    recs = _quarantine_records(batch, outcome)
    seen: dict[str, set[tuple[Any, ...]]] = {}
    for r in recs:
        seen.setdefault(r["rule"], set()).add((r["location"], r["row_number"], r["symbol"], r["session"]))
    by_rule = {k: len(v) for k, v in seen.items()}
    flagged_ids = set(outcome.row_rules) if outcome else set()
    n_quarantined = len(flagged_ids) + len(batch.rejects)
    considered = batch.bars.height + len(batch.rejects)
    share = n_quarantined / considered if considered else 0.0
    warnings = {r.rule: r.unexpected_count for r in outcome.failed_rules("warning")} if outcome else {}
    docs = outcome.data_docs_path if outcome else None
    summary = {
        "quarantined_by_rule": by_rule,
        "warnings_by_rule": warnings,
        "failed_share": share,
        "rows_new": batch.bars.height,
    }

    max_share = settings.validation.max_failed_share
    if share > max_share and n_quarantined >= settings.validation.min_failed_rows:
        worst = sorted(by_rule.items(), key=lambda kv: -kv[1])
        parts = [f"rule {rule}: {n} rows, e.g. {_example_text(recs, rule)}" for rule, n in worst[:4]]
        msg = (
            f"validation failed: {n_quarantined:,} of {considered:,} new rows ({share:.2%}) broke error "
            f"rules, above validation.max_failed_share={max_share:.2%}; nothing was stored. "
            + " | ".join(parts)
            + (f" | Data Docs: {docs}" if docs else "")
        )
        with transaction(engine) as s:
            _write_results(s, batch.ingest_run_id, outcome, recs)
            s.execute(
                update(IngestRun)
                .where(IngestRun.id == batch.ingest_run_id)
                .values(
                    status="failed",
                    finished_at=utcnow(),
                    error=msg[:4000],
                    rows_fetched=batch.rows_fetched,
                    rows_quarantined=n_quarantined,
                    symbols_ok=len(batch.symbols),
                    data_docs_path=docs,
                    errors=[{"symbol": k, "error": v} for k, v in batch.errors.items()],
                    raw_path=batch.raw_path,
                    summary=summary,
                )
            )
        raise ValidationFailedError(msg)

    bars = batch.bars
    if flagged_ids:
        bars = bars.with_columns(pl.col(ROW_ID).is_in(list(flagged_ids)).alias("quarantined"))
    # Rows with a missing value cannot be bars (NOT NULL columns): they live only in the quarantine table.
    not_stored = [
        rid for rid, rules in (outcome.row_rules.items() if outcome else ()) if NOT_STORED_RULES & set(rules)
    ]
    storable = bars.filter(
        pl.all_horizontal(pl.col(c).is_not_null() for c in OHLCV) & ~pl.col(ROW_ID).is_in(not_stored)
    )
    with transaction(engine) as s:
        tq = time.perf_counter()
        _write_results(s, batch.ingest_run_id, outcome, recs)
        tb = time.perf_counter()
        stored = store_bars(
            s,
            storable,
            source=batch.source,
            ingest_run_id=batch.ingest_run_id,
            timeframe=settings.data.timeframe,
        )
        tc = time.perf_counter()
        s.execute(
            update(IngestRun)
            .where(IngestRun.id == batch.ingest_run_id)
            .values(
                status="succeeded",
                finished_at=utcnow(),
                rows_fetched=batch.rows_fetched,
                rows_stored=stored,
                rows_quarantined=n_quarantined,
                symbols_ok=len(batch.symbols),
                data_docs_path=docs,
                errors=[{"symbol": k, "error": v} for k, v in batch.errors.items()],
                raw_path=batch.raw_path,
                summary=summary,
            )
        )
    seconds = time.perf_counter() - t0
    commit_s = time.perf_counter() - tc
    log.info(
        "store: %s rows in %.1fs (%s rows/s)",
        f"{stored:,}",
        seconds,
        f"{stored / seconds:,.0f}" if seconds else "-",
    )
    return IngestReport(
        ingest_run_id=batch.ingest_run_id,
        source=batch.source,
        symbols_ok=batch.symbols,
        symbols_failed=dict(batch.errors),
        rows_fetched=batch.rows_fetched,
        rows_stored=stored,
        rows_quarantined=n_quarantined,
        quarantined_by_rule=by_rule,
        data_docs_path=docs,
        failed_share=share,
        rows_new=batch.bars.height,
        warnings_by_rule=warnings,
        raw_path=batch.raw_path,
        timings={
            "fetch_s": round(batch.seconds, 3),
            "validate_s": round(outcome.seconds if outcome else 0.0, 3),
            "store_s": round(seconds, 3),
            "store_quarantine_s": round(tb - tq, 3),  # quarantine rows + validation summary
            "store_bars_s": round(tc - tb, 3),
            "store_commit_s": round(commit_s, 3),
        },
    )


def run_ingest(
    settings: Settings,
    engine: Engine,
    *,
    source: str | None = None,
    symbols: list[str] | None = None,
    path: str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    flow_run_id: str | None = None,
    http_session: Any = None,
) -> IngestReport:
    """Fetch, validate and store one batch (see module docstring). Raises :class:`SourceError` when
    nothing could be fetched and :class:`ValidationFailedError` when too many rows break error rules;
    the ingest run is recorded as failed in both cases and no bar is stored."""
    source = source or settings.data.source
    start_d, end_d, path = resolve_window(settings, start, end, path)
    log = get_logger()
    run_id = begin_ingest(
        settings,
        engine,
        source=source,
        symbols=symbols,
        path=path,
        start=start_d,
        end=end_d,
        flow_run_id=flow_run_id,
    )
    t0 = time.perf_counter()
    try:
        batch = fetch_stage(
            settings,
            engine,
            run_id,
            source=source,
            symbols=symbols,
            path=path,
            start=start_d,
            end=end_d,
            http_session=http_session,
        )
        outcome = validate_stage(settings, batch)
        report = store_stage(settings, engine, batch, outcome)
    except BaseException as err:
        fail_ingest(engine, run_id, err)
        raise
    report = replace(report, timings={**report.timings, "total_s": round(time.perf_counter() - t0, 3)})
    for line in report.lines():
        log.info(line)
    return report


__all__ = [
    "NOT_STORED_RULES",
    "Batch",
    "IngestReport",
    "begin_ingest",
    "fail_ingest",
    "fetch_stage",
    "resolve_symbols",
    "resolve_window",
    "run_ingest",
    "store_stage",
    "validate_stage",
]
