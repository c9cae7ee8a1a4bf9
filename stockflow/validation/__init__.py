"""Great Expectations validation of a batch of bars: one checkpoint, per-row verdicts, Data Docs.

``validate_batch`` derives the neighbour-aware check columns (``checks``), hands the batch to GX as one
pandas frame (``gx_runner``), and folds the per-expectation results back into per-rule summaries and
the set of rows each error rule condemns.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from stockflow.calendar import NEW_YORK
from stockflow.config import Settings
from stockflow.sources.base import LOCATION_COL, ROW_COL
from stockflow.validation.checks import CONTEXT_SCHEMA, ROW_ID, derive_checks, empty_context
from stockflow.validation.docs import data_docs_dir, data_docs_index


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict over the batch (a rule may have several expectations, e.g. one per column)."""

    rule: str
    severity: str
    success: bool
    element_count: int
    unexpected_count: int  # distinct rows breaking the rule
    unexpected_percent: float
    expectations: tuple[str, ...]
    examples: tuple[dict[str, Any], ...] = ()

    def summary(self) -> dict[str, Any]:
        """Machine-readable form (stored in validation_results.details)."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "expectations": list(self.expectations),
            "examples": list(self.examples),
        }


@dataclass(frozen=True)
class ValidationOutcome:
    """Every rule's result, the rows each error rule quarantines, and the Data Docs page."""

    suite: str
    rules: tuple[RuleResult, ...]
    row_rules: dict[int, tuple[str, ...]] = field(default_factory=dict)  # row_id -> error rules broken
    row_context: dict[int, dict[str, Any]] = field(default_factory=dict)  # derived values of those rows
    data_docs_path: str | None = None
    seconds: float = 0.0

    def failed_rules(self, severity: str = "error") -> list[RuleResult]:
        """Rules of ``severity`` that found at least one offending row."""
        return [r for r in self.rules if r.severity == severity and r.unexpected_count]


def _example(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: row.get(k)
        for k in ("symbol", "session", "open", "high", "low", "close", "volume", LOCATION_COL, ROW_COL)
    }
    out["location"] = out.pop(LOCATION_COL)
    out["row"] = out.pop(ROW_COL)
    for extra in ("close_ratio", "sessions_skipped"):
        if row.get(extra) is not None:
            out[extra] = row[extra]
    session = out.get("session")
    if isinstance(session, dt.date):
        out["session"] = session.isoformat()
    return out


def is_sorted_by_symbol_session(frame: pl.DataFrame) -> bool:
    """True when rows are ordered by symbol, then session (ties allowed)."""
    sym, ses = pl.col("symbol"), pl.col("session")
    ok = (sym > sym.shift(1)) | ((sym == sym.shift(1)) & (ses >= ses.shift(1)))
    return bool(frame.select(ok.fill_null(True).all()).item())


def gx_frame(checked: pl.DataFrame) -> Any:
    """The pandas frame GX validates: compact dtypes, because GX copies it for every metric."""
    derived = (
        "close_ratio",
        "sessions_skipped",
        "days_ahead",
        "is_session",
        "in_file_order",
        "in_calendar",
        "hl_ratio",
        "volume_ratio",
    )
    return checked.with_columns(
        pl.col("symbol").cast(pl.Categorical),
        *[pl.col(c).cast(pl.Float32) for c in derived],
    ).to_pandas()


def validate_batch(
    settings: Settings,
    batch: pl.DataFrame,
    context: pl.DataFrame | None = None,
    *,
    run_name: str,
    today: dt.date | None = None,
) -> tuple[ValidationOutcome, pl.DataFrame]:
    """Validate ``batch`` (fetch frame with a ``row_id`` column, sorted by symbol and session).

    Returns the outcome and the batch with the derived check columns (used for messages and examples).
    """
    t0 = time.perf_counter()  # includes importing GX on the first call
    from expectations.bars import CHECK_COLUMNS, RULES, SUITE_NAME, build_suite, move_bounds

    v = settings.validation
    today = today or dt.datetime.now(NEW_YORK).date()
    if not is_sorted_by_symbol_session(batch):
        batch = batch.sort(["symbol", "session", ROW_ID])
    checked = derive_checks(
        batch,
        context if context is not None else empty_context(),
        move_bounds=move_bounds(v.max_abs_daily_return),
        today=today,
        calendar=settings.data.calendar,
        check_calendar=v.check_calendar,
        volume_floor=v.volume_median_floor,
    )
    frame = gx_frame(checked.select(CHECK_COLUMNS))
    from stockflow.validation.gx_runner import run_checkpoint

    result = run_checkpoint(settings, frame, build_suite(v), run_name=run_name)

    by_rule: dict[str, set[int]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for e in result.expectations:
        by_rule.setdefault(e.rule, set()).update(e.unexpected_index)
        m = meta.setdefault(e.rule, {"severity": e.severity, "success": True, "expectations": []})
        m["success"] = m["success"] and e.success
        m["expectations"].append(f"{e.expectation}({e.column})")
    ids = checked.get_column(ROW_ID).to_list()
    n = checked.height
    rules: list[RuleResult] = []
    row_rules: dict[int, list[str]] = {}
    for rule in RULES:
        if rule.name not in meta:
            continue
        positions = sorted(by_rule.get(rule.name, ()))
        examples: tuple[dict[str, Any], ...] = ()
        if positions:
            sample = checked[positions[: v.max_examples]]
            examples = tuple(_example(r) for r in sample.iter_rows(named=True))
        if rule.severity == "error":
            for p in positions:
                row_rules.setdefault(int(ids[p]), []).append(rule.name)
        m = meta[rule.name]
        rules.append(
            RuleResult(
                rule=rule.name,
                severity=rule.severity,
                success=bool(m["success"]),
                element_count=n,
                unexpected_count=len(positions),
                unexpected_percent=100.0 * len(positions) / n if n else 0.0,
                expectations=tuple(m["expectations"]),
                examples=examples,
            )
        )
    row_context: dict[int, dict[str, Any]] = {}
    if row_rules:
        derived = (
            "close_ratio",
            "sessions_skipped",
            "is_session",
            "days_ahead",
            "oc_max",
            "oc_min",
            "high_ratio",
            "low_ratio",
            "volume_ratio",
        )
        flagged = checked.filter(pl.col(ROW_ID).is_in(list(row_rules))).select(ROW_ID, *derived)
        for rec in flagged.iter_rows(named=True):
            row_context[int(rec.pop(ROW_ID))] = {k: val for k, val in rec.items() if val is not None}
    outcome = ValidationOutcome(
        suite=SUITE_NAME,
        rules=tuple(rules),
        row_rules={k: tuple(v_) for k, v_ in row_rules.items()},
        row_context=row_context,
        data_docs_path=result.data_docs_path,
        seconds=time.perf_counter() - t0,
    )
    return outcome, checked


__all__ = [
    "CONTEXT_SCHEMA",
    "ROW_ID",
    "RuleResult",
    "ValidationOutcome",
    "data_docs_dir",
    "data_docs_index",
    "is_sorted_by_symbol_session",
    "validate_batch",
]
