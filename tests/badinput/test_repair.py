"""Data that can be repaired (both backends): after the source file is corrected, ``--since`` re-reads
stored sessions; repaired quarantined bars are released, restated values are reported and replaced only
on request, with the old values kept in ``bar_revisions``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from stockflow.db.models_data import BarRevision, QuarantinedRow
from stockflow.ingest import run_ingest
from stockflow.store.bars import load_bars
from tests.data.conftest import bar_rows, make_settings, trading_days, write_csv

DAYS = trading_days(30)


def _bar(engine: Engine, i: int) -> dict:
    got = load_bars(engine, ["FIXD"], include_quarantined=True).to_dicts()
    return next(b for b in got if b["session"] == DAYS[i])


def test_repair_cycle(engine: Engine, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    settings = make_settings(tmp_path)
    rows = bar_rows("FIXD", DAYS)
    original_close = rows[10]["close"]
    v1 = [dict(r) for r in rows]
    v1[12]["close"] = -1.0  # stored as a quarantined bar
    v1[14]["volume"] = ""  # a missing value: quarantined, not stored
    write_csv(d / "fixd.csv", v1)
    first = run_ingest(settings, engine, source="files", path=str(d))
    assert first.rows_stored == 29 and _bar(engine, 12)["close"] == -1.0

    v2 = [dict(r) for r in rows]
    v2[10]["close"] = round(original_close * 1.002, 4)  # the vendor restated one close
    write_csv(d / "fixd.csv", v2)
    plain = run_ingest(settings, engine, source="files", path=str(d))
    assert plain.rows_new == 0 and plain.rows_restated == 0  # incremental: nothing to see

    window = run_ingest(settings, engine, source="files", path=str(d), since=DAYS[0])
    assert window.rows_restated == 2  # the restated close and the repaired quarantined bar
    assert window.rows_replaced == 0
    assert _bar(engine, 10)["close"] == original_close  # a good bar is not replaced unasked
    fixed = load_bars(engine, ["FIXD"])  # quarantined bars excluded
    assert fixed.height == 30 and _bar(engine, 12)["close"] == rows[12]["close"]
    assert any("FIXD" in e and "close" in e for e in window.restated_examples)
    assert any("--replace" in line for line in window.lines())
    with engine.connect() as conn:
        open_q = (
            conn.execute(select(QuarantinedRow.rule).where(QuarantinedRow.released_at.is_(None)))
            .scalars()
            .all()
        )
        audit = conn.execute(select(BarRevision.reason, BarRevision.session, BarRevision.old_values)).all()
    assert open_q == []  # both quarantine entries (row 12 and the missing volume) released
    assert [(a.reason, a.session) for a in audit] == [("released", DAYS[12])]
    assert audit[0].old_values["close"] == -1.0 and audit[0].old_values["quarantined"] is True

    replaced = run_ingest(settings, engine, source="files", path=str(d), since=DAYS[0], replace=True)
    assert replaced.rows_restated == 1 and replaced.rows_replaced == 1
    assert _bar(engine, 10)["close"] == v2[10]["close"]
    with engine.connect() as conn:
        restated = conn.execute(
            select(BarRevision.old_values, BarRevision.new_values).where(BarRevision.reason == "restated")
        ).one()
    assert restated.old_values["close"] == original_close and restated.new_values["close"] == v2[10]["close"]

    again = run_ingest(settings, engine, source="files", path=str(d), since=DAYS[0])
    assert again.rows_restated == 0 and again.rows_quarantined == 0
