"""run_ingest end to end on both backends: bad input quarantined with its rule, valid rows kept,
incremental and idempotent, and nothing half-written when it fails."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from stockflow.db.models_data import BarRow, IngestRun, QuarantinedRow, ValidationResult
from stockflow.errors import SourceError, ValidationFailedError
from stockflow.ingest import run_ingest
from stockflow.store.bars import load_bars
from tests.data.conftest import bar_rows, make_settings, trading_days, write_csv

DAYS = trading_days(30)


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def _bad_dir(root: Path) -> Path:
    """A directory holding a good file, one with every row-level defect, and three unreadable files."""
    d = root / "in"
    d.mkdir()
    write_csv(d / "good.csv", bar_rows("AAPL", DAYS) + bar_rows("MSFT", DAYS, base=300))
    rows = bar_rows("IBM", DAYS, base=150)
    rows[3]["close"] = "n/a-price"  # non-numeric
    rows[4]["open"] = "NaN"  # NaN
    rows[5]["low"] = -2  # negative
    rows[6]["close"] = rows[6]["low"] = 0  # zero
    rows[7]["high"] = rows[7]["low"] / 2  # high < low
    rows.append(dict(rows[8], close=rows[8]["high"]))  # conflicting duplicate bar
    rows.append(dict(rows[9]))  # exact duplicate row
    rows[10], rows[11] = rows[11], rows[10]  # out-of-order dates
    rows[12]["close"] = rows[12]["close"] * 100  # 100x typo
    rows[12]["high"] = rows[12]["close"]
    del rows[15:18]  # a gap of three sessions
    rows.append(dict(rows[20], date="2999-01-04"))  # dated in the future
    write_csv(d / "ibm.csv", rows)
    (d / "empty.csv").write_bytes(b"")
    write_csv(d / "wrong.csv", [{"ticker": "X"}], header=["ticker", "px"])
    data = (d / "good.csv").read_bytes()
    import gzip

    (d / "cut.csv.gz").write_bytes(
        gzip.compress(data.replace(b"AAPL", b"NVDA").replace(b"MSFT", b"AMZN"))[:300]
    )
    return d


def test_bad_input_quarantined_valid_rows_kept_and_rerun_stores_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    d = _bad_dir(tmp_path)
    settings = make_settings(tmp_path, validation={"max_failed_share": 0.5})
    report = run_ingest(settings, engine, source="files", path=str(d))

    # Unreadable files are named with their rule; the others' rows are all there.
    failed = report.symbols_failed
    assert set(failed) == {str(d / "empty.csv"), str(d / "wrong.csv"), str(d / "cut.csv.gz")}
    assert "rule empty_file" in failed[str(d / "empty.csv")]
    assert "rule missing_columns" in failed[str(d / "wrong.csv")]
    assert "rule truncated_gzip" in failed[str(d / "cut.csv.gz")]
    good = load_bars(engine, ["AAPL", "MSFT"])
    assert good.height == 60

    with engine.connect() as conn:
        q = conn.execute(
            select(
                QuarantinedRow.symbol,
                QuarantinedRow.session,
                QuarantinedRow.row_number,
                QuarantinedRow.rule,
                QuarantinedRow.location,
                QuarantinedRow.raw,
                QuarantinedRow.detail,
            )
        ).all()
    ibm = [r for r in q if r.location == str(d / "ibm.csv")]
    by_rule: dict[str, set[int]] = {}
    for r in ibm:
        by_rule.setdefault(r.rule, set()).add(r.row_number)
    assert by_rule == {
        "non_numeric": {4},
        "not_null": {5},
        "positive_prices": {6, 7},
        "high_ge_open_close": {8},
        "unique_symbol_session": {9, 28},
        "duplicate_row": {29},
        "daily_move_bound": {13},
        "not_in_future": {30},
    }
    non_num = next(r for r in ibm if r.rule == "non_numeric")
    assert non_num.raw["close"] == "n/a-price" and "close value n/a-price is not a number" in non_num.detail
    typo = next(r for r in ibm if r.rule == "daily_move_bound")
    assert typo.session == DAYS[12] and "close/previous close" in typo.detail

    # IBM's valid rows are stored; the flagged ones are stored but quarantined, except rows that cannot
    # be bars (unparseable, a missing value, dated in the future): those exist only in the quarantine table.
    ibm_ok = load_bars(engine, ["IBM"])
    ibm_all = load_bars(engine, ["IBM"], include_quarantined=True)
    assert ibm_all.height == 25  # 30 sessions - 3 gap - non-numeric - NaN
    assert ibm_all.height - ibm_ok.height == 5  # negative, zero, high<low, duplicate key (first copy), typo
    assert DAYS[12] not in ibm_ok["session"].to_list() and DAYS[13] in ibm_ok["session"].to_list()

    nvda = load_bars(engine, ["NVDA"])  # the complete rows before the truncated gzip's break
    assert 0 < nvda.height < 30 and nvda["session"].to_list() == DAYS[: nvda.height]
    assert report.quarantined_by_rule["positive_prices"] == 2 and report.rows_stored == 60 + 25 + nvda.height
    # Warnings: the 3-session gap and the hole left by the unparseable row; rows 11/12 swapped and the
    # duplicate appended at row 28 (which puts row 10 out of order).
    assert report.warnings_by_rule == {"missing_sessions": 2, "file_date_order": 2}
    with Session(engine) as s:
        res = {r.rule: r for r in s.scalars(select(ValidationResult))}
        run = s.scalars(select(IngestRun)).one()
    assert res["missing_sessions"].severity == "warning" and res["missing_sessions"].unexpected_count == 2
    assert {e["sessions_skipped"] for e in res["missing_sessions"].details["examples"]} == {1, 3}
    assert not res["positive_prices"].success and res["not_null"].details["examples"][0]["row"] == 5
    assert run.status == "succeeded" and run.rows_stored == report.rows_stored and run.data_docs_path

    # Running it again stores nothing twice and quarantines nothing twice.
    n_bars, n_quar = _count(engine, BarRow), _count(engine, QuarantinedRow)
    again = run_ingest(settings, engine, source="files", path=str(d))
    assert again.rows_stored == 0 and again.rows_new == 0 and again.rows_quarantined == 0
    assert (_count(engine, BarRow), _count(engine, QuarantinedRow)) == (n_bars, n_quar)


def test_too_many_bad_rows_fail_loudly_and_store_nothing(engine: Engine, tmp_path: Path) -> None:
    rows = bar_rows("AAPL", DAYS)
    for r in rows[:10]:
        r["low"] = -1
    f = write_csv(tmp_path / "half_bad.csv", rows)
    with pytest.raises(ValidationFailedError) as err:
        run_ingest(make_settings(tmp_path), engine, source="files", path=str(f))
    msg = str(err.value)
    assert "10 of 30 new rows" in msg and "max_failed_share=5.00%" in msg
    assert "rule positive_prices: 10 rows" in msg and "half_bad.csv row 1 AAPL 2024-01-02" in msg
    assert _count(engine, BarRow) == 0
    with Session(engine) as s:
        run = s.scalars(select(IngestRun)).one()
        rules = {r.rule for r in s.scalars(select(QuarantinedRow))}
    assert run.status == "failed" and "positive_prices" in (run.error or "")
    assert rules == {"positive_prices"}


def test_crash_during_the_write_leaves_nothing_half_written(engine: Engine, tmp_path: Path) -> None:
    """A failure on the last statement of the write (the run's final update, after the bars went in)
    rolls everything back; the run is recorded as failed."""
    f = write_csv(
        tmp_path / "bars.csv", [*bar_rows("AAPL", DAYS[:5]), dict(bar_rows("AAPL", DAYS[5:6])[0], low=-1)]
    )
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if pg:
            conn.execute(
                text(
                    "CREATE FUNCTION crash_on_success() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'injected crash'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER crash BEFORE UPDATE ON ingest_runs FOR EACH ROW "
                    "WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION crash_on_success()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER crash BEFORE UPDATE ON ingest_runs WHEN NEW.status = 'succeeded' "
                    "BEGIN SELECT RAISE(ABORT, 'injected crash'); END"
                )
            )
    try:
        with pytest.raises(Exception, match="injected crash"):
            run_ingest(
                make_settings(tmp_path, validation={"max_failed_share": 0.5}),
                engine,
                source="files",
                path=str(f),
            )
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER crash ON ingest_runs" if pg else "DROP TRIGGER crash"))
            if pg:
                conn.execute(text("DROP FUNCTION crash_on_success()"))
    assert _count(engine, BarRow) == 0 and _count(engine, QuarantinedRow) == 0
    assert _count(engine, ValidationResult) == 0
    with Session(engine) as s:
        run = s.scalars(select(IngestRun)).one()
    assert run.status == "failed" and "injected crash" in (run.error or "")


def test_incremental_keeps_only_new_sessions(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    f = tmp_path / "bars.csv"
    write_csv(f, bar_rows("AAPL", DAYS[:20]))
    assert run_ingest(settings, sqlite_engine, source="files", path=str(f)).rows_stored == 20
    write_csv(f, bar_rows("AAPL", DAYS))  # the same file grown by ten sessions
    second = run_ingest(settings, sqlite_engine, source="files", path=str(f))
    assert (second.rows_fetched, second.rows_new, second.rows_stored) == (30, 10, 10)
    assert load_bars(sqlite_engine)["session"].to_list() == DAYS
    stored = load_bars(sqlite_engine).with_columns(pl.col("close").round(4))
    assert stored["close"].to_list() == [r["close"] for r in bar_rows("AAPL", DAYS)]


def test_nothing_fetched_is_an_error_not_an_empty_success(sqlite_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(SourceError, match=r"nothing could be fetched .*empty\.csv.*rule empty_file"):
        run_ingest(make_settings(tmp_path), sqlite_engine, source="files", path=str(tmp_path / "empty.csv"))
    with Session(sqlite_engine) as s:
        run = s.scalars(select(IngestRun)).one()
    assert run.status == "failed" and _count(sqlite_engine, BarRow) == 0
