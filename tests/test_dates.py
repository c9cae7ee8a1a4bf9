"""The one date parser: CLI options, flow parameters and settings overrides read dates the same way."""

from __future__ import annotations

import datetime as dt

import pytest

from stockflow.dates import parse_date
from stockflow.errors import ConfigError


def test_parses_iso_dates_and_passes_dates_and_blanks_through() -> None:
    assert parse_date(" 2024-03-01 ", "--start") == dt.date(2024, 3, 1)
    day = dt.date(2024, 3, 1)
    assert parse_date(day, "--start") is day
    assert parse_date(None, "--start") is None and parse_date("  ", "--start") is None


@pytest.mark.parametrize("text", ["2024-13-01", "03/01/2024", "yesterday"])
def test_a_bad_date_is_one_line_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=rf"^backtest\.start: '{text}' is not a date \(YYYY-MM-DD\)$"):
        parse_date(text, "backtest.start")
