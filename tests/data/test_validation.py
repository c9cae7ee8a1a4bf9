"""The Great Expectations rules on one batch holding every kind of defect (one checkpoint run)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from expectations.bars import RULES, SEVERITY, move_bounds
from stockflow.config import Settings
from stockflow.ops.reports import report_url
from stockflow.sources.base import conform_fetch
from stockflow.validation import ROW_ID, ValidationOutcome, validate_batch
from stockflow.validation.checks import CONTEXT_SCHEMA
from tests.data.conftest import bar_rows, make_settings, trading_days

DAYS = trading_days(41)  # 2024-01-02 .. 2024-02-29
FUTURE = DAYS.pop()  # the session after the last one: "tomorrow"
TODAY = DAYS[-1]


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    df = pl.DataFrame(rows).with_columns(
        pl.col("date").str.to_date().alias("session"), pl.lit("test.csv").alias("_location")
    )
    return conform_fetch(df)


def _scale(row: dict[str, Any], factor: float) -> None:
    for k in ("open", "high", "low", "close"):
        row[k] = row[k] * factor


def _batch() -> pl.DataFrame:
    """One symbol per defect, named after it; the file row number is the position in ``rows``."""
    rows: list[dict[str, Any]] = []
    for sym in (
        "GOOD",
        "NEG",
        "ZERO",
        "HILO",
        "NAN",
        "DUPE",
        "FUTR",
        "WKND",
        "GAP",
        "TYPO",
        "SPLT",
        "FAT",
        "VOLZ",
        "ORDR",
        "CTX",
    ):
        rows += bar_rows(sym, DAYS)
    by = {(r["symbol"], r["date"]): r for r in rows}

    def at(sym: str, i: int) -> dict[str, Any]:
        return by[(sym, DAYS[i].isoformat())]

    at("NEG", 10)["low"] = -1.0
    at("ZERO", 11)["close"] = at("ZERO", 11)["low"] = 0.0
    hl = at("HILO", 12)
    hl["high"], hl["low"] = hl["low"] * 0.9, hl["high"]
    at("NAN", 13)["close"] = None
    rows.append({**at("DUPE", 14), "close": at("DUPE", 14)["high"]})  # a conflicting second copy
    rows.append(dict(at("FUTR", 39), date=FUTURE.isoformat()))  # dated after today
    rows.append(dict(at("WKND", 3), date="2024-01-06"))  # a Saturday
    rows[:] = [
        r
        for r in rows
        if not (r["symbol"] == "GAP" and DAYS[20] <= dt.date.fromisoformat(r["date"]) <= DAYS[24])
    ]
    t = at("TYPO", 25)  # a 100x typo on one day
    t["close"] = t["open"] = t["close"] / 100
    t["low"] = t["close"] * 0.99
    for i in range(30, 40):  # an unadjusted 1:5 split from day 30 on
        _scale(at("SPLT", i), 1 / 5)
    for i in range(30, 40):  # real fat tails: +101% on day 30, then -61% on day 33
        _scale(at("FAT", i), 2.01 if i < 33 else 2.01 * 0.39)
    at("VOLZ", 15)["volume"] = 0
    o20, o21 = rows.index(at("ORDR", 20)), rows.index(at("ORDR", 21))
    rows[o20], rows[o21] = rows[o21], rows[o20]  # two rows swapped in the file
    c = at("CTX", 0)  # CTX's first new bar is 100x its stored close (the context)
    c["close"], c["high"] = c["close"] * 100, c["high"] * 100
    frame = _frame(rows).with_columns(pl.int_range(1, len(rows) + 1).cast(pl.Int64).alias("_row"))
    return frame.sort("symbol", "session", "_row").with_row_index(ROW_ID)


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pl.DataFrame, ValidationOutcome]:
    settings = make_settings(tmp_path_factory.mktemp("val"))
    batch = _batch()
    ctx_close = bar_rows("CTX", DAYS)[0]["close"] * 0.99
    context = pl.DataFrame(
        {
            "symbol": ["CTX"],
            "last_session": [dt.date(2023, 12, 29)],
            "ref_session": [dt.date(2023, 12, 29)],
            "ref_close": [ctx_close],
            "ref_volume": [None],
        },
        schema=CONTEXT_SCHEMA,
    )
    outcome, _ = validate_batch(settings, batch, context, run_name="rules-test", today=TODAY)
    return settings, batch, outcome


def _flagged(batch: pl.DataFrame, outcome: ValidationOutcome) -> dict[tuple[str, dt.date], tuple[str, ...]]:
    rows = batch.filter(pl.col(ROW_ID).is_in(list(outcome.row_rules)))
    return {(r["symbol"], r["session"]): outcome.row_rules[r[ROW_ID]] for r in rows.iter_rows(named=True)}


def test_each_error_rule_quarantines_exactly_the_offending_rows(validated: Any) -> None:
    _, batch, outcome = validated
    got = _flagged(batch, outcome)
    expected = {
        ("NEG", DAYS[10]): ("positive_prices",),
        ("ZERO", DAYS[11]): ("positive_prices",),
        ("HILO", DAYS[12]): ("high_ge_open_close", "low_le_open_close"),
        ("NAN", DAYS[13]): ("not_null",),
        ("DUPE", DAYS[14]): ("unique_symbol_session",),
        ("FUTR", FUTURE): ("not_in_future",),
        ("WKND", dt.date(2024, 1, 6)): ("session_day",),
        ("TYPO", DAYS[25]): ("daily_move_bound", "high_low_range"),  # high left at 100x close
        ("SPLT", DAYS[30]): ("daily_move_bound",),
        ("CTX", DAYS[0]): ("daily_move_bound",),
    }
    assert {k: tuple(sorted(v)) for k, v in got.items()} == {k: tuple(sorted(v)) for k, v in expected.items()}
    # Both conflicting copies of DUPE's bar are held back (two row ids, same key).
    assert sum(1 for rid, rules in outcome.row_rules.items() if "unique_symbol_session" in rules) == 2
    # The day after the 100x typo is correct and compared with the last good close: not flagged.
    assert ("TYPO", DAYS[26]) not in got
    # Real fat tails (+101%, -61%) pass; zero volume, a gap and out-of-order rows are warnings only.
    assert not any(sym in ("FAT", "VOLZ", "GAP", "ORDR", "GOOD") for sym, _ in got)


def test_warnings_are_reported_not_quarantined(validated: Any) -> None:
    _, _, outcome = validated
    by = {r.rule: r for r in outcome.rules}
    assert {r.name for r in RULES} == set(by)
    assert by["missing_sessions"].severity == "warning" and by["missing_sessions"].unexpected_count == 1
    assert by["missing_sessions"].examples[0]["symbol"] == "GAP"
    assert by["missing_sessions"].examples[0]["sessions_skipped"] == 5
    assert by["missing_sessions"].success  # `mostly`: a rare gap does not fail the rule
    assert (
        by["volume_positive"].unexpected_count == 1 and by["volume_positive"].examples[0]["symbol"] == "VOLZ"
    )
    # The swapped ORDR rows, and the DUPE/WKND rows appended at the end of the file, are out of date order.
    assert {e["symbol"] for e in by["file_date_order"].examples} == {"ORDR", "DUPE", "WKND"}
    assert all(SEVERITY[r] == "error" for rules in outcome.row_rules.values() for r in rules)
    ex = by["positive_prices"].examples
    assert {e["symbol"] for e in ex} == {"NEG", "ZERO"} and ex[0]["location"] == "test.csv" and ex[0]["row"]


def test_data_docs_written_and_linkable(validated: Any) -> None:
    settings, _, outcome = validated
    page = Path(outcome.data_docs_path)
    assert page.exists() and page.is_relative_to(settings.reports_dir / "data_docs")
    assert (settings.reports_dir / "data_docs" / "index.html").exists()
    html = page.read_text()
    assert "close_ratio" in html  # the run's page shows each expectation and its result
    assert "cdn.jsdelivr.net" not in html and "stockflow-offline.css" in html  # readable without network
    suite_page = (settings.reports_dir / "data_docs" / "expectations" / "stockflow_bars.html").read_text()
    assert "[error] positive_prices" in suite_page and "[warning] missing_sessions" in suite_page
    url = report_url(settings, page)
    assert url.startswith("http://127.0.0.1:8765/data_docs/") and url.endswith(".html")


def test_move_bound_is_symmetric_in_log_terms() -> None:
    low, high = move_bounds(0.75)
    assert low == pytest.approx(0.25) and high == pytest.approx(4.0)


def test_shared_dataset_typos_fail_real_fat_tails_pass(shared_data: Path, tmp_path: Path) -> None:
    """On the real S&P 500 file: AVB's 100x and 10x typos are caught (only the typo rows), WMB's +101%
    (2002-07-29) and AIG's -61% (2008-09-15) are real and pass."""
    from stockflow.sources.files import FilesSource

    bars = (
        FilesSource(shared_data).fetch(["AVB", "WMB", "AIG"], dt.date(2002, 1, 1), dt.date(2013, 12, 31)).bars
    )
    batch = bars.sort("symbol", "session").with_row_index(ROW_ID)
    outcome, _ = validate_batch(make_settings(tmp_path), batch, run_name="shared")
    moves = batch.filter(
        pl.col(ROW_ID).is_in([rid for rid, rules in outcome.row_rules.items() if "daily_move_bound" in rules])
    )
    assert sorted(zip(moves["symbol"], moves["session"], strict=True)) == [
        ("AVB", dt.date(2010, 9, 16)),
        ("AVB", dt.date(2012, 12, 21)),
    ]
