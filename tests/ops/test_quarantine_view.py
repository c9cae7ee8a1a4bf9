"""The quarantine a person can read (issue 11): symbol, session, rule, raw values, source file and row."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine
from typer.testing import CliRunner

from stockflow.db.engine import transaction
from stockflow.db.models_data import QuarantinedRow
from stockflow.ops.quarantine import format_quarantine, quarantine_rows


def _seed(engine: Engine) -> None:
    with transaction(engine) as s:
        s.add(
            QuarantinedRow(
                source="files", location="/data/sp500.csv.gz", row_number=1812, symbol="AAPL",
                session=dt.date(2001, 5, 7), rule="ohlc_consistent", severity="error",
                detail="high 9.1 below close 9.4",
                raw={"date": "2001-05-07", "open": "9.2", "high": "9.1", "low": "8.9", "close": "9.4",
                     "volume": "1000", "_row": 1812},
            )
        )  # fmt: skip
        s.add(
            QuarantinedRow(
                source="sample", location=None, row_number=None, symbol="IBM", session=dt.date(2002, 1, 2),
                rule="positive_prices", severity="error", detail="close -1", raw={"close": "-1"},
            )
        )  # fmt: skip


def test_rows_name_symbol_session_rule_raw_values_and_where_from(sqlite_engine: Engine) -> None:
    _seed(sqlite_engine)
    rows = quarantine_rows(sqlite_engine)
    assert [r["symbol"] for r in rows] == ["IBM", "AAPL"]  # newest first
    aapl = rows[1]
    assert (aapl["session"], aapl["rule"], aapl["file"], aapl["row"]) == (
        "2001-05-07", "ohlc_consistent", "/data/sp500.csv.gz", 1812
    )  # fmt: skip
    assert aapl["raw values"] == "date=2001-05-07, open=9.2, high=9.1, low=8.9, close=9.4, volume=1000"
    text = format_quarantine(quarantine_rows(sqlite_engine, symbol="aapl"))
    assert "AAPL   2001-05-07  ohlc_consistent (error): high 9.1 below close 9.4" in text
    assert "from: files /data/sp500.csv.gz, row 1812" in text and "IBM" not in text
    assert quarantine_rows(sqlite_engine, rule="positive_prices")[0]["file"] == "-"
    assert format_quarantine([]) == "nothing is quarantined"


def test_cli_lists_the_quarantine(sqlite_engine: Engine, monkeypatch: object) -> None:
    from stockflow.cli import app

    _seed(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app, ["quarantine", "--rule", "ohlc_consistent"], env={"STOCKFLOW_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    assert "1 quarantined row(s)" in result.output and "raw: date=2001-05-07" in result.output
