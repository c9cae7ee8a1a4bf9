"""Stages before the store: open the run, fetch what is new (or the re-read window), validate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import polars as pl
from sqlalchemy import Engine, update

from stockflow.calendar import last_completed_session
from stockflow.config import Settings
from stockflow.crashed import claim_run
from stockflow.dates import parse_date
from stockflow.db import transaction, utcnow
from stockflow.db.models_data import IngestRun
from stockflow.domain.market import normalize_symbol
from stockflow.errors import ConfigError, SourceError
from stockflow.ingest.quarantine import drop_known_bad_rows, drop_known_rejects
from stockflow.ingest.repair import load_stored, mark_reread
from stockflow.ingest.report import _MAX_ERRORS_SHOWN, OHLCV, Batch
from stockflow.logs import get_logger
from stockflow.sources import DataSource, FetchResult, Reject, get_source
from stockflow.sources.base import LOCATION_COL, ROW_COL, empty_fetch_frame, merge_results
from stockflow.store.bars import bar_context, latest_sessions
from stockflow.validation import ROW_ID, ValidationOutcome, is_sorted_by_symbol_session, validate_batch
from stockflow.validation.checks import empty_context


def resolve_symbols(settings: Settings, source: str, symbols: list[str] | None) -> list[str] | None:
    """The symbols to ingest. ``None`` means every symbol the source offers: the default for ``files``
    when data.symbols was not set explicitly (a directory or file defines its own universe)."""
    if symbols:
        return [normalize_symbol(s) for s in symbols]
    if source == "files" and "symbols" not in settings.data.model_fields_set:
        return None
    return [normalize_symbol(s) for s in settings.data.symbols] or None


def resolve_window(
    settings: Settings, start: dt.date | str | None, end: dt.date | str | None, path: str | None
) -> tuple[dt.date | None, dt.date | None, str | None]:
    """Start, end and path, defaulting to the settings (data.start, data.end, data.path).
    Raises :class:`ConfigError` when start is after end (nothing could ever be ingested)."""
    first = parse_date(start, "start") or parse_date(settings.data.start, "data.start")
    last = parse_date(end, "end") or parse_date(settings.data.end, "data.end")
    if first and last and first > last:
        raise ConfigError(f"--start {first} is after --end {last}: the window is empty; swap them")
    return first, last, path or settings.data.path


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
        claim_run(s, "ingest", int(run.id), flow_run_id)
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
    src: DataSource,
    engine: Engine,
    symbols: list[str],
    start: dt.date | None,
    end: dt.date | None,
    *,
    since: dt.date | None = None,
) -> tuple[FetchResult, int]:
    """Ask a remote source only for what is missing (from ``since`` on when a window is re-read):
    symbols grouped by their first missing session. Returns the result and how many symbols are up to
    date (nothing after their last stored bar)."""
    last = latest_sessions(engine, symbols)
    if since is not None:
        last = {k: min(v, since - dt.timedelta(days=1)) for k, v in last.items()}
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
        res = dataclasses.replace(res, errors=errors, empty=empty)
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
    since: dt.date | None = None,
    replace: bool = False,
) -> Batch:
    """Fetch from ``source`` and keep only what is new, plus every stored session from ``since`` on
    (re-read: see :mod:`stockflow.ingest.repair`). Raises :class:`SourceError` when nothing at all
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
        result, up_to_date = _fetch_remote(src, engine, wanted, start, end, since=since)
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

    # Incremental: drop what is already stored (quarantined bars count: they were fetched before),
    # except the re-read window from ``since`` on.
    last = latest_sessions(engine, fetched_symbols or None)
    reread = since is not None and bool(last)
    if last:
        last_df = pl.DataFrame(
            {"symbol": list(last), "_last": list(last.values())}, schema={"symbol": pl.Utf8, "_last": pl.Date}
        )
        keep = pl.col("_last").is_null() | (pl.col("session") > pl.col("_last"))
        if since is not None:
            keep = keep | (pl.col("session") >= since)
        bars = bars.join(last_df, on="symbol", how="left", maintain_order="left").filter(keep).drop("_last")
    rejects = [
        r
        for r in result.rejects
        if not (
            r.symbol in last
            and r.session is not None
            and r.session <= last[r.symbol]
            and (since is None or r.session < since)
        )
    ]
    rejects = drop_known_rejects(engine, rejects)
    bars = drop_known_bad_rows(engine, bars)
    if not is_sorted_by_symbol_session(bars):  # files are usually sorted already: skip a 2.7M-row sort
        bars = bars.sort(["symbol", "session", LOCATION_COL, ROW_COL], nulls_last=True)
    bars, dup_rejects = _split_exact_duplicates(bars)
    rejects += dup_rejects
    if reread and since is not None:
        stored = load_stored(engine, fetched_symbols, since, settings.data.timeframe)
        bars = mark_reread(bars, stored)
    bars = bars.with_row_index(ROW_ID)
    new_symbols = bars.get_column("symbol").unique().to_list()
    context = bar_context(engine, new_symbols, before=since) if new_symbols else empty_context()
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
        replace=replace,
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
