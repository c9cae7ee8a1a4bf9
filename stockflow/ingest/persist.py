"""The store stage: bars, quarantine rows, validation summary and the run's verdict in one transaction."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select, text, update

from stockflow.config import Settings
from stockflow.db import is_postgres, transaction, utcnow
from stockflow.db.models_data import IngestRun, QuarantinedRow, ValidationResult
from stockflow.errors import ValidationFailedError
from stockflow.ingest.quarantine import example_text, quarantine_records
from stockflow.ingest.repair import apply_changes, describe_change, release_quarantine
from stockflow.ingest.report import NOT_STORED_RULES, OHLCV, REREAD_COL, Batch, IngestReport
from stockflow.logs import get_logger
from stockflow.sources.base import LOCATION_COL
from stockflow.store.bars import store_bars
from stockflow.validation import ROW_ID, ValidationOutcome


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


def _group_key(frame: pl.DataFrame, source: str) -> pl.Expr:
    return pl.concat_str(
        [pl.coalesce(pl.col(LOCATION_COL), pl.lit(source)), pl.lit(" symbol "), pl.col("symbol")]
    )


def judge_groups(
    settings: Settings, batch: Batch, outcome: ValidationOutcome | None
) -> tuple[dict[str, str], set[str], int, int]:
    """Judge validation per file and symbol: a group whose quarantined share passes
    ``validation.max_failed_share`` (with at least ``min_failed_rows``) fails alone; the others land.
    Returns (failed group -> message, groups considered, quarantined rows, rows considered)."""
    v = settings.validation
    bars = batch.bars
    if REREAD_COL in bars.columns:
        bars = bars.filter(pl.col(REREAD_COL).fill_null("") != "same")
    flagged_ids = list(outcome.row_rules) if outcome else []
    per = (
        bars.select(
            _group_key(bars, batch.source).alias("g"),
            pl.col(ROW_ID).is_in(flagged_ids).alias("bad"),
        )
        .group_by("g")
        .agg(pl.len().alias("n"), pl.col("bad").sum().alias("bad"))
    )
    counts = {g: [int(n), int(b)] for g, n, b in per.iter_rows()}
    for r in batch.rejects:
        g = f"{r.location or batch.source} symbol {r.symbol or '?'}"
        c = counts.setdefault(g, [0, 0])
        c[0] += 1
        c[1] += 1
    failed: dict[str, str] = {}
    for g, (n, bad) in counts.items():
        share = bad / n if n else 0.0
        if share > v.max_failed_share and bad >= v.min_failed_rows:
            failed[g] = (
                f"validation failed for {g}: {bad:,} of {n:,} rows ({share:.2%}) broke error rules, above "
                f"validation.max_failed_share={v.max_failed_share:.2%}; none of its rows were stored "
                "(see the quarantine); fix the file and ingest again"
            )
    n_bad = sum(b for _, b in counts.values())
    n_all = sum(n for n, _ in counts.values())
    return failed, set(counts), n_bad, n_all


def _lock_and_dedupe(
    s: Any, engine: Engine, ingest_run_id: int, recs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Serialize the store of concurrent ingests, then drop quarantine records an ingest that committed
    meanwhile already stored (the same file row or symbol-session and rule)."""
    if is_postgres(engine):
        s.execute(text("SELECT pg_advisory_xact_lock(7212012)"))
    else:  # a first write takes SQLite's write lock; later reads see every committed ingest
        s.execute(update(IngestRun).where(IngestRun.id == ingest_run_id).values(status="running"))
    locations = sorted({r["location"] for r in recs if r["location"]})
    if not locations:
        return recs
    known: set[tuple[Any, ...]] = set()
    for i in range(0, len(locations), 500):
        q = select(
            QuarantinedRow.location,
            QuarantinedRow.row_number,
            QuarantinedRow.rule,
            QuarantinedRow.symbol,
            QuarantinedRow.session,
        ).where(QuarantinedRow.location.in_(locations[i : i + 500]), QuarantinedRow.released_at.is_(None))
        known |= {tuple(r) for r in s.execute(q)}
    return [
        r for r in recs if (r["location"], r["row_number"], r["rule"], r["symbol"], r["session"]) not in known
    ]


def _finish(s: Any, batch: Batch, **values: Any) -> None:
    s.execute(
        update(IngestRun)
        .where(IngestRun.id == batch.ingest_run_id)
        .values(
            finished_at=utcnow(),
            rows_fetched=batch.rows_fetched,
            symbols_ok=len(batch.symbols),
            raw_path=batch.raw_path,
            **values,
        )
    )


def store_stage(
    settings: Settings, engine: Engine, batch: Batch, outcome: ValidationOutcome | None
) -> IngestReport:
    """Write the batch: bars (flagged rows kept as quarantined), quarantine rows, validation summary,
    repairs of a re-read window and the run's final state, in one transaction.

    Validation is judged per file and symbol (:func:`judge_groups`): a failing group stores none of its
    rows and is named in the report's failures; the others land. When every group fails, only the
    verdict, the summary and the quarantine rows are written, and :class:`ValidationFailedError` names
    the rules and example rows."""
    t0 = time.perf_counter()
    log = get_logger()
    recs = quarantine_records(batch, outcome)
    seen: dict[str, set[tuple[Any, ...]]] = {}
    for r in recs:
        seen.setdefault(r["rule"], set()).add((r["location"], r["row_number"], r["symbol"], r["session"]))
    by_rule = {k: len(v) for k, v in seen.items()}
    failed_groups, groups, n_quarantined, considered = judge_groups(settings, batch, outcome)
    share = n_quarantined / considered if considered else 0.0
    warnings = {r.rule: r.unexpected_count for r in outcome.failed_rules("warning")} if outcome else {}
    docs = outcome.data_docs_path if outcome else None
    fresh = batch.bars
    if REREAD_COL in fresh.columns:
        fresh = fresh.filter(pl.col(REREAD_COL).is_null())
    summary: dict[str, Any] = {
        "quarantined_by_rule": by_rule,
        "warnings_by_rule": warnings,
        "failed_share": share,
        "rows_new": fresh.height,
        "failed_groups": sorted(failed_groups),
    }
    errors = {**batch.errors, **failed_groups}

    if failed_groups and len(failed_groups) == len(groups):
        max_share = settings.validation.max_failed_share
        worst = sorted(by_rule.items(), key=lambda kv: -kv[1])
        parts = [f"rule {rule}: {n} rows, e.g. {example_text(recs, rule)}" for rule, n in worst[:4]]
        msg = (
            f"validation failed: {n_quarantined:,} of {considered:,} new rows ({share:.2%}) broke error "
            f"rules, above validation.max_failed_share={max_share:.2%} in every file/symbol; nothing was "
            "stored. " + " | ".join(parts) + (f" | Data Docs: {docs}" if docs else "")
        )
        with transaction(engine) as s:
            recs = _lock_and_dedupe(s, engine, batch.ingest_run_id, recs)
            _write_results(s, batch.ingest_run_id, outcome, recs)
            _finish(
                s,
                batch,
                status="failed",
                error=msg[:4000],
                rows_quarantined=n_quarantined,
                data_docs_path=docs,
                errors=[{"symbol": k, "error": v} for k, v in errors.items()],
                summary=summary,
            )
        raise ValidationFailedError(msg)

    bars = batch.bars.with_columns(_group_key(batch.bars, batch.source).alias("_group"))
    if failed_groups:
        bars = bars.filter(~pl.col("_group").is_in(list(failed_groups)))
    flagged_ids = set(outcome.row_rules) if outcome else set()
    bars = bars.with_columns(pl.col(ROW_ID).is_in(list(flagged_ids)).alias("quarantined"))
    # Rows with a missing value cannot be bars (NOT NULL columns): they live only in the quarantine table.
    not_stored = [
        rid for rid, rules in (outcome.row_rules.items() if outcome else ()) if NOT_STORED_RULES & set(rules)
    ]
    storable = bars.filter(
        pl.all_horizontal(pl.col(c).is_not_null() for c in OHLCV) & ~pl.col(ROW_ID).is_in(not_stored)
    )
    changed = storable.head(0)
    if REREAD_COL in storable.columns:
        changed = storable.filter(pl.col(REREAD_COL) == "changed")
        storable = storable.filter(pl.col(REREAD_COL).is_null())
    changed_ok = changed.filter(~pl.col("quarantined"))
    examples = tuple(describe_change(r) for r in changed.head(5).iter_rows(named=True))
    with transaction(engine) as s:
        tq = time.perf_counter()
        recs = _lock_and_dedupe(s, engine, batch.ingest_run_id, recs)
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
        replaced, released = apply_changes(
            s,
            changed_ok,
            replace=batch.replace,
            ingest_run_id=batch.ingest_run_id,
            source=batch.source,
            timeframe=settings.data.timeframe,
        )
        good = pl.concat(
            [
                storable.filter(~pl.col("quarantined")).select("symbol", "session"),
                changed_ok.filter(pl.col("_s_quarantined") | pl.lit(batch.replace)).select(
                    "symbol", "session"
                )
                if changed_ok.height
                else storable.head(0).select("symbol", "session"),
            ]
        )
        released_q = release_quarantine(s, good, batch.ingest_run_id)
        summary.update(
            rows_restated=changed.height,
            rows_replaced=replaced,
            rows_released=released,
            released_q=released_q,
        )
        _finish(
            s,
            batch,
            status="succeeded",
            rows_stored=stored + replaced + released,
            rows_quarantined=n_quarantined,
            data_docs_path=docs,
            errors=[{"symbol": k, "error": v} for k, v in errors.items()],
            summary=summary,
        )
    seconds = time.perf_counter() - t0
    commit_s = time.perf_counter() - tc
    log.info(
        "store: %s rows in %.1fs (%s rows/s)",
        f"{stored:,}",
        seconds,
        f"{stored / seconds:,.0f}" if seconds else "-",
    )
    for msg in failed_groups.values():
        log.warning(msg)
    return IngestReport(
        ingest_run_id=batch.ingest_run_id,
        source=batch.source,
        symbols_ok=tuple(
            sym for sym in batch.symbols if not any(g.endswith(f" symbol {sym}") for g in failed_groups)
        ),
        symbols_failed=errors,
        rows_fetched=batch.rows_fetched,
        rows_stored=stored + replaced + released,
        rows_quarantined=n_quarantined,
        quarantined_by_rule=by_rule,
        data_docs_path=docs,
        failed_share=share,
        rows_new=fresh.height,
        warnings_by_rule=warnings,
        raw_path=batch.raw_path,
        rows_restated=changed.height,
        rows_replaced=replaced,
        rows_released=released + released_q,
        restated_examples=examples,
        timings={
            "fetch_s": round(batch.seconds, 3),
            "validate_s": round(outcome.seconds if outcome else 0.0, 3),
            "store_s": round(seconds, 3),
            "store_quarantine_s": round(tb - tq, 3),  # quarantine rows + validation summary
            "store_bars_s": round(tc - tb, 3),
            "store_commit_s": round(commit_s, 3),
        },
    )
