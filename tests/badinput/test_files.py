"""Bad files and absurd values through the real ingest, on SQLite and PostgreSQL: each is quarantined
or refused with one line naming the file, row, symbol and rule; good files still land."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from stockflow.db.models_data import QuarantinedRow
from stockflow.errors import ConfigError
from stockflow.ingest import begin_ingest, fetch_stage, run_ingest, store_stage, validate_stage
from stockflow.store.bars import load_bars
from tests.data.conftest import HEADER, bar_rows, make_settings, trading_days, write_csv

DAYS = trading_days(30)


def _rows(symbol: str, **edits: dict[str, Any]) -> list[dict[str, Any]]:
    rows = bar_rows(symbol, DAYS)
    for i, change in edits.items():
        rows[int(i.removeprefix("r"))].update(change)
    return rows


def _corpus_dir(root: Path) -> Path:
    d = root / "corpus"
    d.mkdir()
    write_csv(d / "good.csv", _rows("GOOD"))
    lines = (d / "good.csv").read_text().replace("GOOD", "RAGD").splitlines()
    lines[5] += ",extra,fields"  # data row 5 has 9 fields
    (d / "ragged.csv").write_text("\n".join(lines) + "\n")
    (d / "semi.csv").write_text(
        ";".join(HEADER) + "\n" + "\n".join(";".join(str(r[h]) for h in HEADER) for r in _rows("SEMI")) + "\n"
    )
    write_csv(d / "big.csv", bar_rows("BIGF", trading_days(400)))  # ~25 KB on disk
    with gzip.open(d / "biggz.csv.gz", "wt") as f:  # small on disk, ~25 KB once decompressed
        f.write(",".join(HEADER) + "\n" + "BIGZ,2024-01-02,1,2,0.5,1.5,100\n" * 1200)
    dated = _rows("DATE")
    dated.insert(0, dict(dated[0], date="0001-01-01", close=1.0, open=1.0, high=1.1, low=0.9))
    dated.insert(1, dict(dated[1], date="1850-01-02", close=3.0, open=3.0, high=3.1, low=2.9))
    write_csv(d / "dates.csv", dated)
    hi = _rows("HIGX")
    hi[10]["high"] = hi[10]["high"] * 100
    write_csv(d / "hix100.csv", hi)
    lo = _rows("LOWD")
    lo[10]["low"] = lo[10]["low"] / 100
    write_csv(d / "lowd100.csv", lo)
    vol = _rows("VOLX")
    vol[25]["volume"] = vol[25]["volume"] * 1000
    write_csv(d / "vol.csv", vol)
    h308 = _rows("HUGE")
    h308[10]["high"] = 1e308
    write_csv(d / "h308.csv", h308)
    v300 = _rows("VBIG")
    v300[10]["volume"] = 1e300
    write_csv(d / "v300.csv", v300)
    bad = _rows("BADF")
    for r in bad[5:15]:
        r["close"] = -1.0  # a third of the file breaks positive_prices: this file fails alone
    write_csv(d / "badfile.csv", bad)
    return d


def _rules(engine: Engine, symbol: str) -> dict[str, set[Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(QuarantinedRow.rule, QuarantinedRow.row_number).where(QuarantinedRow.symbol == symbol)
        ).all()
    out: dict[str, set[Any]] = {}
    for rule, row in rows:
        out.setdefault(rule, set()).add(row)
    return out


def test_bad_files_and_absurd_values(engine: Engine, tmp_path: Path) -> None:
    d = _corpus_dir(tmp_path)
    settings = make_settings(tmp_path, data={"max_file_mb": 0.02})
    report = run_ingest(settings, engine, source="files", path=str(d))
    failed = report.symbols_failed

    # Files refused whole, each in one line naming the file and what to do.
    assert "separated by semicolons" in failed[str(d / "semi.csv")]
    assert "file too large" in failed[str(d / "big.csv")] and "data.max_file_mb" in failed[str(d / "big.csv")]
    assert "once decompressed" in failed[str(d / "biggz.csv.gz")]
    # The bad file fails alone (judged per file and symbol): none of its rows stored, the others land.
    bad_key = f"{d / 'badfile.csv'} symbol BADF"
    assert "validation failed for" in failed[bad_key] and "none of its rows were stored" in failed[bad_key]
    assert load_bars(engine, ["BADF"], include_quarantined=True).height == 0
    assert load_bars(engine, ["GOOD"]).height == 30
    assert all("\n" not in msg for msg in failed.values())

    # A ragged row is named by its row; the rest of its file lands.
    with engine.connect() as conn:
        ragged = conn.execute(
            select(QuarantinedRow.location, QuarantinedRow.row_number, QuarantinedRow.detail).where(
                QuarantinedRow.rule == "ragged_row"
            )
        ).all()
    assert [(r.location, r.row_number) for r in ragged] == [(str(d / "ragged.csv"), 5)]
    assert "has 9 fields, the header has 7" in ragged[0].detail
    assert load_bars(engine, ["RAGD"]).height == 29

    # Dates before the calendar: quarantined, and the genuine first bar is not condemned by them.
    assert _rules(engine, "DATE") == {"date_in_calendar": {1, 2}}
    assert load_bars(engine, ["DATE"]).height == 30
    # Absurd values: caught by their bound, only the offending row.
    assert _rules(engine, "HIGX") == {"high_low_range": {11}}
    assert _rules(engine, "LOWD") == {"high_low_range": {11}}
    assert _rules(engine, "VOLX") == {"volume_bound": {26}}
    assert set(_rules(engine, "HUGE")) >= {"price_bound", "high_low_range"}
    assert _rules(engine, "HUGE")["price_bound"] == {11}
    assert _rules(engine, "VBIG") == {"volume_bound": {11}}


def test_start_after_end_is_refused(tmp_path: Path, engine: Engine) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(ConfigError, match="--start 2024-02-01 is after --end 2024-01-01"):
        run_ingest(settings, engine, source="sample", start="2024-02-01", end="2024-01-01")


def test_unusable_reports_dir_is_a_warning_not_a_lost_ingest(sqlite_engine: Engine, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    write_csv(d / "good.csv", _rows("GOOD"))
    blocker = tmp_path / "reports-is-a-file"
    blocker.write_text("not a directory")
    settings = make_settings(tmp_path).model_copy(update={"reports_dir": blocker})
    report = run_ingest(settings, sqlite_engine, source="files", path=str(d))
    assert report.rows_stored == 30 and report.data_docs_path is None
    assert load_bars(sqlite_engine, ["GOOD"]).height == 30


def test_concurrent_ingests_store_quarantine_rows_once(engine: Engine, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    rows = _rows("DUAL")
    rows[7]["close"] = -1.0
    write_csv(d / "dual.csv", rows)
    settings = make_settings(tmp_path)
    # Both runs fetch and validate before either stores: the race of two ingests started together.
    batches = []
    for _ in range(2):
        run_id = begin_ingest(settings, engine, source="files", path=str(d))
        batch = fetch_stage(settings, engine, run_id, source="files", path=str(d))
        batches.append((batch, validate_stage(settings, batch)))
    for batch, outcome in batches:
        store_stage(settings, engine, batch, outcome)
    with engine.connect() as conn:
        keys = conn.execute(select(QuarantinedRow.row_number, QuarantinedRow.rule)).all()
    # Row 8 breaks two rules (close -1 < low): each stored once, not once per run.
    assert sorted(keys) == [(8, "low_le_open_close"), (8, "positive_prices")]
    assert load_bars(engine, ["DUAL"], include_quarantined=True).height == 30
