"""The Great Expectations suite for daily bars: every rule, its severity and its threshold.

Rules with severity ``error`` quarantine the rows that break them; ``warning`` rules are reported and
stored but block nothing. Some rules compare a row with its neighbours (previous close, previous
session); GX checks columns, so ``stockflow.validation.checks`` derives those columns first:

- ``oc_max`` / ``oc_min``: max/min of open and close.
- ``close_ratio``: close / reference close. The reference is the previous valid close of the symbol
  (the last stored, non-quarantined close for the first new row), skipping an isolated spike, so that
  after a one-day 100x typo only the typo row breaks the rule, not the correct day after it.
- ``sessions_skipped``: exchange sessions between this bar and the symbol's previous bar.
- ``is_session``: 1 when the date is a session of the exchange calendar, 0 when not (null outside
  its range).
- ``days_ahead``: days between the bar and today in New York.
- ``in_file_order``: 1 when the row sits where the file's date order says it should, else 0.
- ``in_calendar``: 1 when the date is not before the exchange calendar's start (1900), else 0
  (0001-01-01 or 1850 never pass; such a row is also left out of its neighbours' checks; dates after
  the calendar's end are the ``not_in_future`` rule's).
- ``price_max``: the largest of open, high, low and close.
- ``hl_ratio``: the larger of high / max(open, close) and min(open, close) / low (a high x100 or a
  low /100 is a typo; the real extremes of 488 S&P 500 members since 1962 are about 3.2).
- ``volume_ratio``: volume / the median of the symbol's previous 20 volumes (in the batch, else stored),
  with a floor so that a thinly traded first week is not judged against a tiny median.

GX gets these flags as numbers, the symbol as a categorical and the derived columns as float32: GX
copies the whole frame for every metric, and this halves its time on 2.7M rows.

Thresholds come from ``ValidationSettings``. ``max_abs_daily_return`` (x) bounds one-day moves in
both directions symmetrically in log terms: close/reference must lie in [1 - x, 1 / (1 - x)]
(x = 0.75: -75% .. +300%). Real fat tails stay inside (the worst days of 488 S&P 500 members since
1962 are about -61% and +108%); 10x/100x typos and splits of 1:4 or more that were not adjusted fall
outside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import great_expectations.expectations as gxe

from stockflow.config.sections import ValidationSettings

SUITE_NAME = "stockflow_bars"
Severity = Literal["error", "warning"]

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV = (*PRICE_COLUMNS, "volume")
#: Columns the suite reads (canonical plus derived); validation hands GX only these.
CHECK_COLUMNS = (
    "symbol",
    "session",
    *OHLCV,
    "oc_max",
    "oc_min",
    "close_ratio",
    "sessions_skipped",
    "is_session",
    "days_ahead",
    "in_file_order",
    "in_calendar",
    "price_max",
    "hl_ratio",
    "volume_ratio",
)


@dataclass(frozen=True)
class Rule:
    """One named data rule: severity, what it means, and the GX expectations that check it."""

    name: str
    severity: Severity
    description: str
    build: Callable[[ValidationSettings], list[Any]]


def move_bounds(max_abs_daily_return: float) -> tuple[float, float]:
    """Allowed range of close / reference close for the one-day move rule."""
    low = 1.0 - max_abs_daily_return
    return low, 1.0 / low


def _move_rule(v: ValidationSettings) -> list[Any]:
    low, high = move_bounds(v.max_abs_daily_return)
    return [gxe.ExpectColumnValuesToBeBetween(column="close_ratio", min_value=low, max_value=high)]


RULES: tuple[Rule, ...] = (
    Rule(
        "not_null",
        "error",
        "open, high, low, close and volume are present (not null, not NaN)",
        lambda v: [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in OHLCV],
    ),
    Rule(
        "positive_prices",
        "error",
        "open, high, low and close are > 0",
        lambda v: [
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True) for c in PRICE_COLUMNS
        ],
    ),
    Rule(
        "volume_non_negative",
        "error",
        "volume >= 0",
        lambda v: [gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0)],
    ),
    Rule(
        "high_ge_open_close",
        "error",
        "high >= max(open, close)",
        lambda v: [
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="high", column_B="oc_max", or_equal=True, ignore_row_if="either_value_is_missing"
            )
        ],
    ),
    Rule(
        "low_le_open_close",
        "error",
        "low <= min(open, close)",
        lambda v: [
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="oc_min", column_B="low", or_equal=True, ignore_row_if="either_value_is_missing"
            )
        ],
    ),
    Rule(
        "unique_symbol_session",
        "error",
        "one bar per symbol and session (conflicting copies all held back)",
        lambda v: [gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "session"])],
    ),
    Rule(
        "date_in_calendar",
        "error",
        "the date is not before the exchange calendar's start in 1900 (0001-01-01 or 1850 are typos)",
        lambda v: [gxe.ExpectColumnValuesToBeInSet(column="in_calendar", value_set=[1])],
    ),
    Rule(
        "price_bound",
        "error",
        "open, high, low and close are below validation.max_price",
        lambda v: [gxe.ExpectColumnValuesToBeBetween(column="price_max", max_value=v.max_price)],
    ),
    Rule(
        "high_low_range",
        "error",
        "high and low lie within validation.max_intraday_ratio of open and close",
        lambda v: [gxe.ExpectColumnValuesToBeBetween(column="hl_ratio", max_value=v.max_intraday_ratio)],
    ),
    Rule(
        "volume_bound",
        "error",
        "volume below validation.max_volume and within validation.max_volume_ratio of its own median",
        lambda v: [
            gxe.ExpectColumnValuesToBeBetween(column="volume", max_value=v.max_volume),
            gxe.ExpectColumnValuesToBeBetween(column="volume_ratio", max_value=v.max_volume_ratio),
        ],
    ),
    Rule(
        "session_day",
        "error",
        "the date is a session of the exchange calendar",
        lambda v: [gxe.ExpectColumnValuesToBeInSet(column="is_session", value_set=[1])],
    ),
    Rule(
        "not_in_future",
        "error",
        "the bar is not dated after today (New York)",
        lambda v: [gxe.ExpectColumnValuesToBeBetween(column="days_ahead", max_value=0)],
    ),
    Rule("daily_move_bound", "error", "one-day close-to-close move within the hard bound", _move_rule),
    Rule(
        "missing_sessions",
        "warning",
        "no exchange sessions missing between a symbol's bars",
        lambda v: [
            gxe.ExpectColumnValuesToBeBetween(
                column="sessions_skipped", max_value=0, mostly=v.missing_sessions_mostly
            )
        ],
    ),
    Rule(
        "volume_positive",
        "warning",
        "volume > 0 (zero-volume days are suspicious, not impossible)",
        lambda v: [gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0, strict_min=True)],
    ),
    Rule(
        "file_date_order",
        "warning",
        "rows of a file are in date order (they are sorted on ingest)",
        lambda v: [gxe.ExpectColumnValuesToBeInSet(column="in_file_order", value_set=[1])],
    ),
)

SEVERITY: dict[str, Severity] = {r.name: r.severity for r in RULES}


def build_suite(v: ValidationSettings) -> Any:
    """The GX ExpectationSuite with every rule; each expectation's ``meta`` names its rule and severity."""
    import great_expectations as gx

    expectations = []
    for rule in RULES:
        for exp in rule.build(v):
            exp.meta = {"rule": rule.name, "severity": rule.severity}
            exp.notes = f"[{rule.severity}] {rule.name}: {rule.description}"
            expectations.append(exp)
    # Built without a context (add_expectation would need one); the runner registers it.
    return gx.ExpectationSuite(
        name=SUITE_NAME,
        expectations=expectations,
        meta={"owner": "stockflow data layer", "rules": {r.name: r.severity for r in RULES}},
    )
