"""The ``DataSource`` protocol every bar source implements, and what a fetch returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import polars as pl

from stockflow.domain.market import BAR_SCHEMA

#: Provenance columns a source may add after the canonical ones: where a row came from.
LOCATION_COL = "_location"
ROW_COL = "_row"
PROVENANCE_SCHEMA: dict[str, pl.DataType] = {LOCATION_COL: pl.Utf8(), ROW_COL: pl.Int64()}
FETCH_SCHEMA: dict[str, pl.DataType] = {**BAR_SCHEMA, **PROVENANCE_SCHEMA}


@dataclass(frozen=True)
class Reject:
    """A row that could not be turned into a bar at all, kept with its raw values and the rule it broke.

    ``location`` is a file path or ``source:SYMBOL``; ``row`` the 1-based data row in that file (the
    header not counted), when there is a file.
    """

    location: str
    row: int | None
    symbol: str | None
    rule: str
    detail: str
    raw: Mapping[str, Any] = field(default_factory=dict)
    session: dt.date | None = None

    def message(self) -> str:
        """One line naming file/symbol/row and rule, for logs and error messages."""
        parts = [self.location]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.symbol:
            parts.append(f"symbol {self.symbol}")
        return f"{', '.join(parts)}: rule {self.rule}: {self.detail}"


@dataclass(frozen=True)
class FetchResult:
    """What a source returns.

    - ``bars``: the canonical columns of ``BAR_SCHEMA`` first, then the provenance columns ``_location``
      and ``_row`` (1-based data row in a file, null for remote sources). Values may still break
      validation rules (nulls, negative prices, ...): validation, not the reader, judges them.
    - ``rejects``: rows that could not be parsed at all.
    - ``errors``: per-symbol (or per-file) failures; one failing never loses the others.
    - ``raw_path``: where the raw payload is kept (the input file itself, or a copy of a remote payload).
    - ``empty``: symbols the source answered for with no bars at all (each also has an ``errors``
      entry; the incremental fetch drops it for a symbol already stored: it is up to date).
    """

    bars: pl.DataFrame
    rejects: tuple[Reject, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)
    raw_path: str | None = None
    empty: tuple[str, ...] = ()

    @property
    def symbols(self) -> list[str]:
        """Symbols with at least one parsed row."""
        return sorted(self.bars.get_column("symbol").unique().to_list()) if self.bars.height else []


@runtime_checkable
class DataSource(Protocol):
    """A source of daily bars. ``local`` sources (files, sample) are read whole and filtered after;
    remote ones are asked only for the sessions that are missing."""

    name: str
    local: bool

    def fetch(self, symbols: list[str] | None, start: dt.date | None, end: dt.date | None) -> FetchResult:
        """Bars of ``symbols`` (None: every symbol the source offers) between ``start`` and ``end``
        inclusive (None: unbounded). Raises :class:`stockflow.errors.SourceError` when nothing could be
        fetched, :class:`stockflow.errors.RetryableError` on transient failures."""
        ...


def empty_fetch_frame() -> pl.DataFrame:
    """An empty frame with the canonical and provenance columns."""
    return pl.DataFrame(schema=FETCH_SCHEMA)


def conform_fetch(df: pl.DataFrame) -> pl.DataFrame:
    """Canonical + provenance columns, in order and with their dtypes (missing provenance is null)."""
    cols = []
    for name, dtype in FETCH_SCHEMA.items():
        cols.append(pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype=dtype).alias(name))
    return df.select(cols)


def clip_to_range(df: pl.DataFrame, start: dt.date | None, end: dt.date | None) -> pl.DataFrame:
    """Only the sessions in [start, end] (inclusive; None: unbounded). Remote sources may answer with
    bars outside the request (time-zone edges, a provider ignoring ``end``); those were not asked for
    and would otherwise be stored as if they were."""
    if df.is_empty() or (start is None and end is None):
        return df
    keep = pl.lit(True)
    if start is not None:
        keep = keep & (pl.col("session") >= start)
    if end is not None:
        keep = keep & (pl.col("session") <= end)
    return df.filter(keep)


def merge_results(results: list[FetchResult], raw_path: str | None = None) -> FetchResult:
    """Concatenate several fetches (e.g. one per group of symbols or per file)."""
    frames = [r.bars for r in results if r.bars.height]
    errors: dict[str, str] = {}
    rejects: list[Reject] = []
    empty: list[str] = []
    for r in results:
        errors.update(r.errors)
        rejects.extend(r.rejects)
        empty.extend(r.empty)
    bars = pl.concat(frames, how="vertical_relaxed") if frames else empty_fetch_frame()
    paths = [r.raw_path for r in results if r.raw_path]
    return FetchResult(
        bars=bars,
        rejects=tuple(rejects),
        errors=errors,
        raw_path=raw_path or (paths[0] if len(set(paths)) == 1 else None),
        empty=tuple(empty),
    )
