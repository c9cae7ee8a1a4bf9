"""What an ingest produced: the batch of new rows between stages, and the run's report."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from stockflow.config import Settings
from stockflow.ops.reports import report_url
from stockflow.sources import Reject

OHLCV = ("open", "high", "low", "close", "volume")
#: Rows breaking these rules are kept only in the quarantine table, not as (quarantined) bars: a bar with
#: a missing value cannot be stored, and a bar dated in the future would move the incremental cursor.
NOT_STORED_RULES = frozenset({"not_null", "not_in_future", "date_in_calendar"})
_MAX_ERRORS_SHOWN = 5
#: Column of a batch: null for a session not stored yet, "same" / "changed" for a stored one read again.
REREAD_COL = "_reread"


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
    rows_restated: int = 0  # stored sessions the source now gives other values for (re-read window)
    rows_replaced: int = 0  # of those, replaced (--replace); the old values are in bar_revisions
    rows_released: int = 0  # quarantined bars repaired, plus quarantine rows released
    restated_examples: tuple[str, ...] = ()

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
        out += self.repair_lines()
        for sym, err in list(self.symbols_failed.items())[:_MAX_ERRORS_SHOWN]:
            out.append(f"failed {sym}: {err}")
        if len(self.symbols_failed) > _MAX_ERRORS_SHOWN:
            out.append(f"... and {len(self.symbols_failed) - _MAX_ERRORS_SHOWN} more failures")
        if self.data_docs_path:
            out.append(f"data docs: {self.data_docs_path}")
        return out

    def repair_lines(self) -> list[str]:
        """What a re-read window found: restated, replaced, released."""
        if not (self.rows_restated or self.rows_released):
            return []
        out = [
            f"restated: {self.rows_restated:,} stored bar(s) differ in the source, {self.rows_replaced:,} "
            f"replaced; released: {self.rows_released:,} repaired quarantined row(s)"
        ]
        kept = self.rows_restated - self.rows_replaced
        if kept > 0:
            out.append(
                f"{kept:,} restated bar(s) kept as stored: re-run with --replace to take the new values"
            )
        out += [f"  {e}" for e in self.restated_examples[:_MAX_ERRORS_SHOWN]]
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
        if self.repair_lines():
            md += ["", "### Re-read window", "", *[f"- {x.strip()}" for x in self.repair_lines()]]
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
    replace: bool = False  # replace restated good bars (else report them)
