"""Turning raw tables (every value a string) into canonical bars plus rejects.

Shared by the file and sample sources. The reader is strict about structure (columns, dates, numbers)
and lenient about values: a negative price parses fine and is left to validation, which quarantines it
with the rule it broke. Rows that cannot be parsed at all become :class:`Reject` s with their raw values.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import polars as pl

from stockflow.domain.market import normalize_symbol
from stockflow.errors import DataError
from stockflow.sources.base import LOCATION_COL, ROW_COL, Reject, conform_fetch

NUMERIC_COLUMNS = ("open", "high", "low", "close", "volume")
REQUIRED_COLUMNS = ("session", *NUMERIC_COLUMNS)

# Header spellings seen in the wild (Yahoo CSVs, Kaggle per-symbol files, Quandl, our long format).
_ALIASES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker", "sym", "name"),
    "session": ("date", "session", "timestamp", "datetime", "time", "day"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
    "adj_close": ("adj close", "adjclose", "adjusted close"),
}
# Values that mean "missing" (kept as null so the not-null rule quarantines the row with its values).
_NA_TOKENS = ["", "na", "n/a", "nan", "null", "none", "-", "--"]
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
_MAX_REJECT_DETAIL = 200


def _norm_header(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def map_columns(columns: list[str]) -> dict[str, str]:
    """Canonical name -> column in ``columns`` for every column we recognise."""
    normalized = {_norm_header(c): c for c in columns}
    found: dict[str, str] = {}
    for canon, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in normalized:
                found[canon] = normalized[alias]
                break
    return found


def parse_dates(values: pl.Series) -> pl.Series:
    """Dates from strings: ISO ``YYYY-MM-DD`` (optionally followed by a time), ``MM/DD/YYYY`` or
    ``YYYYMMDD``; null where none fits. The common ISO case is one vectorized pass."""
    s = values.str.strip_chars()
    out = s.str.to_date("%Y-%m-%d", strict=False)
    missing = out.is_null() & s.is_not_null()
    if not missing.any():
        return out
    idx = missing.arg_true()
    rest = s.gather(idx)
    iso_ts = pl.Series(
        [v[:10] if v is not None and _ISO_DATE.match(v) else None for v in rest.to_list()], dtype=pl.Utf8
    ).str.to_date("%Y-%m-%d", strict=False)
    us = rest.str.to_date("%m/%d/%Y", strict=False)
    compact = rest.str.to_date("%Y%m%d", strict=False)
    fixed = iso_ts.zip_with(iso_ts.is_not_null(), us)
    fixed = fixed.zip_with(fixed.is_not_null(), compact)
    return out.scatter(idx, fixed)


def _parse_numbers(values: pl.Series) -> tuple[pl.Series, pl.Series | None]:
    """Floats from strings (NaN and NA tokens -> null) and, only if some value is not a number, a mask
    of those values."""
    num = values.str.strip_chars().cast(pl.Float64, strict=False)
    if num.null_count() == values.null_count() and not num.is_infinite().any():
        return num.fill_nan(None), None
    is_na = values.is_null() | values.str.strip_chars().str.to_lowercase().is_in(_NA_TOKENS)
    bad = (~is_na & num.is_null()) | num.is_infinite().fill_null(False)
    return num.fill_nan(None), bad


def parse_table(
    raw: pl.DataFrame,
    *,
    location: str,
    symbol: str | None = None,
    symbols: list[str] | None = None,
    keep_adj_close: bool = False,
    first_row: int = 1,
) -> tuple[pl.DataFrame, list[Reject]]:
    """Parse ``raw`` (columns of strings, any known header spelling) into the fetch frame.

    ``symbol`` is used when the table has no symbol column (one file per symbol). ``symbols`` keeps only
    those symbols. Raises :class:`DataError` (rule ``missing_columns``) when the table cannot be bars.
    """
    cols = map_columns(raw.columns)
    missing = ["symbol"] if "symbol" not in cols and symbol is None else []
    missing += [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; found {raw.columns}. Expected a long table "
            "symbol,date,open,high,low,close,volume or a per-symbol file Date,Open,High,Low,Close,Volume",
            location=location,
            rule="missing_columns",
        )
    raw = raw.with_columns(pl.all().cast(pl.Utf8)).with_row_index(ROW_COL, offset=first_row)
    raw = raw.with_columns(pl.col(ROW_COL).cast(pl.Int64))

    # Symbols: normalize each distinct value once (a few hundred at most).
    if "symbol" in cols:
        sym_raw = pl.col(cols["symbol"]).str.strip_chars().str.to_uppercase()
        distinct = raw.select(sym_raw.unique()).to_series().to_list()
        valid: dict[str, str] = {}
        for value in distinct:
            if value is None:
                continue
            with contextlib.suppress(DataError):
                valid[value] = normalize_symbol(value)
        if len(valid) == len([v for v in distinct if v is not None]) and all(
            k == v for k, v in valid.items()
        ):
            sym_expr = sym_raw  # already canonical: skip the per-row mapping
        else:
            sym_expr = sym_raw.replace_strict(valid, default=None, return_dtype=pl.Utf8)
    else:
        assert symbol is not None
        sym_expr = pl.lit(normalize_symbol(symbol), dtype=pl.Utf8)

    parsed = raw.with_columns(sym_expr.alias("__symbol"))
    if symbols is not None:
        wanted = {normalize_symbol(x) for x in symbols}
        # Unparseable symbols cannot be matched to a request; they are reported when all were asked.
        parsed = parsed.filter(pl.col("__symbol").is_in(list(wanted)))

    # Why a row cannot be a bar; the first problem wins, the detail names the offending value.
    problems: list[tuple[str, pl.Series, pl.Expr]] = []
    sym_bad = parsed.get_column("__symbol").is_null()
    if sym_bad.any():
        problems.append(
            (
                "invalid_symbol",
                sym_bad,
                pl.format("symbol {} is not a valid ticker", pl.col(cols["symbol"]).fill_null("<empty>")),
            )
        )
    sessions = parse_dates(parsed.get_column(cols["session"]))
    date_bad = sessions.is_null()
    if date_bad.any():
        problems.append(
            (
                "unparseable_date",
                date_bad,
                pl.format(
                    "date {} is not a date (YYYY-MM-DD or MM/DD/YYYY)",
                    pl.col(cols["session"]).fill_null("<empty>"),
                ),
            )
        )
    numbers: dict[str, pl.Series] = {}
    for c in NUMERIC_COLUMNS:
        numbers[c], bad = _parse_numbers(parsed.get_column(cols[c]))
        if bad is not None and bad.any():
            problems.append(
                ("non_numeric", bad, pl.format("{} value {} is not a number", pl.lit(c), pl.col(cols[c])))
            )
    if keep_adj_close and "adj_close" in cols:
        numbers["adj_close"], _ = _parse_numbers(parsed.get_column(cols["adj_close"]))

    parsed = parsed.with_columns(
        sessions.alias("__session"), *[v.alias(f"__{k}") for k, v in numbers.items()]
    )
    rejects: list[Reject] = []
    if problems:
        rule_expr: pl.Expr = pl.lit(None, dtype=pl.Utf8)
        detail_expr: pl.Expr = pl.lit(None, dtype=pl.Utf8)
        for rule, mask, detail in reversed(problems):
            cond = pl.lit(mask)
            rule_expr = pl.when(cond).then(pl.lit(rule)).otherwise(rule_expr)
            detail_expr = pl.when(cond).then(detail).otherwise(detail_expr)
        parsed = parsed.with_columns(rule_expr.alias("__rule"), detail_expr.alias("__detail"))
        raw_cols = [c for c in raw.columns if c != ROW_COL]
        for rec in parsed.filter(pl.col("__rule").is_not_null()).iter_rows(named=True):
            raw_values: dict[str, Any] = {c: rec[c] for c in raw_cols}
            rejects.append(
                Reject(
                    location=location,
                    row=rec[ROW_COL],
                    symbol=rec["__symbol"] or raw_values.get(cols.get("symbol", "")) or symbol,
                    rule=rec["__rule"],
                    detail=str(rec["__detail"])[:_MAX_REJECT_DETAIL],
                    raw=raw_values,
                    session=rec["__session"],
                )
            )
        parsed = parsed.filter(pl.col("__rule").is_null())
    out = parsed.select(
        pl.col("__symbol").alias("symbol"),
        pl.col("__session").alias("session"),
        *[pl.col(f"__{c}").alias(c) for c in NUMERIC_COLUMNS],
        pl.lit(location, dtype=pl.Utf8).alias(LOCATION_COL),
        pl.col(ROW_COL),
        *([pl.col("__adj_close").alias("adj_close")] if "__adj_close" in parsed.columns else []),
    )
    adj = out.get_column("adj_close") if "adj_close" in out.columns else None
    frame = conform_fetch(out)
    if adj is not None:
        frame = frame.with_columns(adj)
    return frame, rejects
