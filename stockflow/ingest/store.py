"""The store stage: bars, quarantine rows, validation summary and the run's verdict in one transaction."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, update

from stockflow.config import Settings
from stockflow.db import transaction, utcnow
from stockflow.db.models_data import IngestRun, QuarantinedRow, ValidationResult
from stockflow.errors import ValidationFailedError
from stockflow.ingest.quarantine import example_text, quarantine_records
from stockflow.ingest.report import NOT_STORED_RULES, OHLCV, Batch, IngestReport
from stockflow.logs import get_logger
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


def store_stage(
    settings: Settings, engine: Engine, batch: Batch, outcome: ValidationOutcome | None
) -> IngestReport:
    """Write the batch: bars (flagged rows kept as quarantined), quarantine rows, validation summary and
    the run's final state, in one transaction. When the quarantined share passes the threshold, only the
    run's verdict, the summary and the quarantine rows are written, and :class:`ValidationFailedError`
    names the rules and example rows."""
    t0 = time.perf_counter()
    log = get_logger()
    recs = quarantine_records(batch, outcome)
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
        parts = [f"rule {rule}: {n} rows, e.g. {example_text(recs, rule)}" for rule, n in worst[:4]]
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
