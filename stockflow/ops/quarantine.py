"""The quarantine a person can read: which rows were kept out, by which rule, with the raw values and
where they came from (source file and 1-based data row, or the remote source).

GX Data Docs show internal column names and row numbers of the validated batch; this view reads the
``quarantine`` table instead: symbol, session, rule, severity, the raw values as they were in the source,
and the file/row. ``stockflow quarantine`` prints it; the ingest flow publishes it as the
``quarantine`` table artifact.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

#: Key of the table artifact the ingest flow publishes.
QUARANTINE_KEY = "quarantine"
#: Raw columns shown first (the rest follow in their order).
_RAW_FIRST = ("date", "session", "open", "high", "low", "close", "volume")


def _raw_text(raw: dict[str, Any] | None) -> str:
    if not raw:
        return "-"
    keys = [k for k in _RAW_FIRST if k in raw] + [
        k for k in raw if k not in _RAW_FIRST and not k.startswith("_")
    ]
    return ", ".join(f"{k}={raw[k]!s}" for k in keys)


def quarantine_rows(
    engine: Engine,
    *,
    ingest_run_id: int | None = None,
    symbol: str | None = None,
    rule: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Quarantined rows, newest first, as plain rows: symbol, session, rule, severity, detail, raw values,
    source, file and row."""
    from stockflow.db.engine import transaction
    from stockflow.db.models_data import QuarantinedRow

    stmt = select(QuarantinedRow)
    if ingest_run_id is not None:
        stmt = stmt.where(QuarantinedRow.ingest_run_id == ingest_run_id)
    if symbol:
        stmt = stmt.where(QuarantinedRow.symbol == symbol.upper())
    if rule:
        stmt = stmt.where(QuarantinedRow.rule == rule)
    with transaction(engine) as s:
        rows = s.scalars(stmt.order_by(QuarantinedRow.id.desc()).limit(limit)).all()
        return [
            {
                "symbol": r.symbol or "-",
                "session": r.session.isoformat() if r.session else "-",
                "rule": r.rule,
                "severity": r.severity,
                "detail": (r.detail or "")[:300],
                "raw values": _raw_text(r.raw),
                "source": r.source,
                "file": r.location or "-",
                "row": r.row_number if r.row_number is not None else "-",
                "ingest run": r.ingest_run_id,
            }
            for r in rows
        ]


def format_quarantine(rows: list[dict[str, Any]]) -> str:
    """The rows for the terminal, one block line per row."""
    if not rows:
        return "nothing is quarantined"
    lines = [f"{len(rows)} quarantined row(s), newest first:"]
    for r in rows:
        where = f"{r['file']}" + (f", row {r['row']}" if r["row"] != "-" else "")
        lines.append(f"  {r['symbol']:<6} {r['session']}  {r['rule']} ({r['severity']}): {r['detail']}")
        lines.append(f"         raw: {r['raw values']}")
        lines.append(f"         from: {r['source']} {where}")
    return "\n".join(lines)
