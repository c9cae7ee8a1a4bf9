"""Sources without a database: file layouts, the bundled sample, and bad input named precisely."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest

from stockflow.errors import SourceError
from stockflow.sources import get_source
from stockflow.sources.files import FilesSource, symbol_from_filename
from stockflow.sources.sample import SampleSource
from tests.data.conftest import bar_rows, make_settings, trading_days, write_csv

DAYS = trading_days(10)


def test_long_per_symbol_gzip_and_parquet_layouts_agree(tmp_path: Path) -> None:
    rows = bar_rows("AAPL", DAYS) + bar_rows("BRK.B", DAYS, base=300)
    long = write_csv(tmp_path / "long.csv", rows)
    per = tmp_path / "per"
    per.mkdir()
    # Yahoo-style per-symbol files: capitalized header, an Adj Close column, Kaggle's ".us" suffix, gzip.
    header = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    for sym, name in (("AAPL", "aapl.us.txt"), ("BRK.B", "BRK.B.csv.gz")):
        recs = [
            {
                "Date": r["date"],
                "Open": r["open"],
                "High": r["high"],
                "Low": r["low"],
                "Close": r["close"],
                "Adj Close": 1.0,
                "Volume": r["volume"],
            }
            for r in rows
            if r["symbol"] == sym
        ]
        write_csv(per / name, recs, header)
    pq = tmp_path / "bars.parquet"
    pl.read_csv(long).write_parquet(pq)

    frames = [
        FilesSource(p).fetch(None, None, None).bars.drop("_location", "_row").sort("symbol", "session")
        for p in (long, per, pq)
    ]
    assert frames[0].height == 20 and set(frames[0]["symbol"]) == {"AAPL", "BRK.B"}
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    # Adj Close is not used: close stays the file's close.
    assert frames[1].filter(pl.col("symbol") == "AAPL")["close"].to_list() == [r["close"] for r in rows[:10]]
    assert symbol_from_filename(Path("aapl.us.txt")) == "AAPL"

    some = FilesSource(long).fetch(["brk.b"], DAYS[2], DAYS[4]).bars
    assert some["symbol"].unique().to_list() == ["BRK.B"] and some["session"].to_list() == DAYS[2:5]


def test_sample_is_real_bundled_data_split_adjusted() -> None:
    res = SampleSource().fetch(["AAPL", "^GSPC", "NOPE"], None, dt.date(2012, 12, 31))
    bars = res.bars
    assert set(bars["symbol"]) == {"AAPL", "^GSPC"}
    assert "NOPE" in res.errors and "not in the sample data" in res.errors["NOPE"]
    aapl = bars.filter(pl.col("symbol") == "AAPL")
    assert aapl["session"].min() == dt.date(2000, 3, 1) and aapl["session"].max() <= dt.date(2012, 12, 31)
    # AAPL split 2:1 on 2005-02-28: adjusted closes do not halve overnight.
    split = aapl.filter(pl.col("session").is_between(dt.date(2005, 2, 25), dt.date(2005, 2, 28)))["close"]
    assert abs(split[1] / split[0] - 1) < 0.1
    assert bars.filter(pl.col("symbol") == "^GSPC")["session"].min() == dt.date(1999, 1, 4)
    assert all(Path(p.strip()).exists() for p in (res.raw_path or "").split(";"))


def test_get_source_names_bad_configuration(tmp_path: Path) -> None:
    from stockflow.errors import ConfigError

    s = make_settings(tmp_path)
    with pytest.raises(ConfigError, match="needs a path"):
        get_source("files", s)
    with pytest.raises(ConfigError, match="unknown data source 'bogus'"):
        get_source("bogus", s)
    with pytest.raises(SourceError, match="does not exist"):
        get_source("files", s, str(tmp_path / "missing")).fetch(None, None, None)


def _one(tmp_path: Path, name: str, content: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


GOOD = (
    "symbol,date,open,high,low,close,volume\n"
    "AAPL,2024-01-02,10,11,9,10.5,100\n"
    "AAPL,2024-01-03,10,11,9,10.4,100\n"
)


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("empty.csv", b"", "empty_file"),
        ("header_only.csv", b"symbol,date,open,high,low,close,volume\n", "empty_file"),
        ("wrong_columns.csv", b"ticker,day,price\nAAPL,2024-01-02,10\n", "missing_columns"),
        (
            "missing_volume.csv",
            b"symbol,date,open,high,low,close\nAAPL,2024-01-02,1,2,0.5,1.5\n",
            "missing_columns",
        ),
        ("corrupt.csv.gz", b"\x1f\x8b\x08\x00garbage-not-deflate", "corrupt_gzip"),
    ],
)
def test_unreadable_file_is_named_and_skips_only_itself(
    tmp_path: Path, name: str, content: bytes, rule: str
) -> None:
    bad = _one(tmp_path, name, content)
    _one(tmp_path, "good.csv", GOOD.encode())
    res = FilesSource(tmp_path).fetch(None, None, None)
    assert res.bars.height == 2  # the good file's rows are kept
    assert list(res.errors) == [str(bad)]
    assert str(bad) in res.errors[str(bad)] and f"rule {rule}" in res.errors[str(bad)]
    alone = FilesSource(bad).fetch(None, None, None)
    assert alone.bars.height == 0 and list(alone.errors) == [str(bad)]


def test_unparseable_rows_are_rejected_with_file_row_rule_and_raw_values(tmp_path: Path) -> None:
    content = (
        "symbol,date,open,high,low,close,volume\n"
        "AAPL,2024-01-02,10,11,9,10.5,100\n"  # row 1 ok
        "AAPL,2024-01-03,ten,11,9,10.5,100\n"  # row 2 non-numeric
        "AAPL,2024-13-45,10,11,9,10.5,100\n"  # row 3 bad date
        "AAPL,2024-01-05,10,11,9,NaN,100\n"  # row 4 NaN: parses, left to the not_null rule
        "B@D,2024-01-05,10,11,9,10,100\n"  # row 5 invalid symbol
        "AAPL,01/08/2024,10,11,9,10.5,\n"  # row 6 US date ok, empty volume -> null
    )
    res = FilesSource(_one(tmp_path, "mixed.csv", content.encode())).fetch(None, None, None)
    assert res.bars["_row"].to_list() == [1, 4, 6]
    assert res.bars.filter(pl.col("_row") == 4)["close"].is_null().all()
    assert res.bars.filter(pl.col("_row") == 6)["session"].to_list() == [dt.date(2024, 1, 8)]
    got = {(r.row, r.rule) for r in res.rejects}
    assert got == {(2, "non_numeric"), (3, "unparseable_date"), (5, "invalid_symbol")}
    r2 = next(r for r in res.rejects if r.row == 2)
    assert r2.raw["open"] == "ten" and r2.symbol == "AAPL"
    assert "mixed.csv, row 2, symbol AAPL: rule non_numeric: open value ten is not a number" in r2.message()


def test_truncated_gzip_keeps_complete_rows_and_names_the_file(tmp_path: Path) -> None:
    rows = bar_rows("MSFT", trading_days(400))
    full = write_csv(tmp_path / "full.csv.gz", rows)
    data = full.read_bytes()
    cut = _one(tmp_path, "cut.csv.gz", data[: len(data) // 2])
    full.unlink()
    res = FilesSource(cut).fetch(None, None, None)
    assert 0 < res.bars.height < 400
    # Every kept row is complete and equal to the original.
    kept = res.bars.sort("_row")
    assert kept["close"].to_list() == [r["close"] for r in rows[: kept.height]]
    msg = res.errors[str(cut)]
    assert (
        "rule truncated_gzip" in msg
        and "cut.csv.gz" in msg
        and f"kept the {kept.height} complete rows" in msg
    )
    with gzip.open(cut, "rb") as f, pytest.raises(EOFError):
        f.read()


def test_last_completed_session_waits_for_the_close() -> None:
    from stockflow.calendar import NEW_YORK, last_completed_session

    def at(day: int, hour: int) -> dt.datetime:
        return dt.datetime(2024, 7, day, hour, tzinfo=NEW_YORK)

    assert last_completed_session(now=at(5, 10)) == dt.date(2024, 7, 3)  # Fri morning; the 4th is a holiday
    assert last_completed_session(now=at(5, 17)) == dt.date(2024, 7, 5)
    assert last_completed_session(now=at(6, 12)) == dt.date(2024, 7, 5)  # Saturday
