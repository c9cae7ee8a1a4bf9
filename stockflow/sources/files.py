"""The ``files`` source: a CSV/parquet file or a directory of them, optionally gzip-compressed.

Two layouts are understood: a long table ``symbol,date,open,high,low,close,volume`` (many symbols per
file) and one file per symbol ``Date,Open,High,Low,Close,Volume[,Adj Close]`` whose name gives the symbol
(``AAPL.csv``, ``aapl.us.txt``, ``BRK.B.csv.gz``). Files stay where they are: they are the raw copy.
A file that cannot be read (empty, wrong columns, corrupt) is reported by name and skips only itself; a
truncated gzip keeps the complete rows before the break.
"""

from __future__ import annotations

import datetime as dt
import io
import zlib
from pathlib import Path

import polars as pl

from stockflow.errors import DataError, SourceError
from stockflow.logs import Progress
from stockflow.sources.base import FetchResult, Reject, merge_results
from stockflow.sources.parsing import parse_table

SUFFIXES = (".csv", ".txt", ".parquet", ".pq")


def _strip_suffixes(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".gz"):
        name, lower = name[:-3], lower[:-3]
    for suf in SUFFIXES:
        if lower.endswith(suf):
            return name[: -len(suf)]
    return name


def symbol_from_filename(path: Path) -> str:
    """``aapl.us.txt`` -> ``AAPL`` (Kaggle's ``.us`` suffix dropped); ``BRK.B.csv.gz`` -> ``BRK.B``."""
    stem = _strip_suffixes(path.name)
    if stem.lower().endswith(".us"):
        stem = stem[:-3]
    return stem.upper()


def is_data_file(path: Path) -> bool:
    """True for the file types this source reads."""
    return path.is_file() and _strip_suffixes(path.name) != path.name and not path.name.startswith(".")


def list_files(path: Path) -> list[Path]:
    """The data files at ``path`` (a file, or every data file under a directory, sorted)."""
    if not path.exists():
        raise SourceError(f"files source: {path} does not exist")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if is_data_file(p))
    if not files:
        raise SourceError(f"files source: no .csv/.txt/.parquet files (optionally .gz) under {path}")
    return files


def _gunzip(data: bytes, location: str) -> tuple[bytes, bool]:
    """Decompress every gzip member; on a truncated stream return what came out and ``True``."""
    out: list[bytes] = []
    while data:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(data))
        except zlib.error as err:
            raise DataError(f"corrupt gzip data: {err}", location=location, rule="corrupt_gzip") from None
        if not d.eof:
            out.append(d.flush())
            return b"".join(out), True
        data = d.unused_data
    return b"".join(out), False


def read_raw_table(path: Path) -> tuple[pl.DataFrame, Reject | None]:
    """Read a file as a table of strings. A truncated gzip yields its complete rows and a reject."""
    location = str(path)
    if path.stat().st_size == 0:
        raise DataError("empty file (0 bytes)", location=location, rule="empty_file")
    name = path.name.lower()
    data = path.read_bytes()
    truncated = False
    if name.endswith(".gz"):
        data, truncated = _gunzip(data, location)
        name = name[:-3]
    if name.endswith((".parquet", ".pq")):
        try:
            table = pl.read_parquet(io.BytesIO(data))
        except Exception as err:
            raise DataError(f"unreadable parquet: {err}", location=location, rule="unreadable_file") from None
        table = table.with_columns(pl.all().cast(pl.Utf8))
    else:
        if truncated:
            # The last line is cut somewhere in the middle: keep only complete lines.
            data = data[: data.rfind(b"\n") + 1]
        if not data.strip():
            raise DataError("empty file (no header, no rows)", location=location, rule="empty_file")
        try:
            table = pl.read_csv(io.BytesIO(data), infer_schema=False)
        except Exception as err:
            msg = str(err).splitlines()[0]
            raise DataError(f"malformed CSV: {msg}", location=location, rule="malformed_csv") from None
    reject = None
    if truncated:
        reject = Reject(
            location=location,
            row=table.height + 1,
            symbol=None,
            rule="truncated_gzip",
            detail=f"gzip stream ends early: kept the {table.height} complete rows before the break; "
            "the rest of the file is missing (download it again)",
        )
    if table.height == 0 and reject is None:
        raise DataError("no data rows (header only)", location=location, rule="empty_file")
    return table, reject


class FilesSource:
    """Bars from local files (see module docstring)."""

    name = "files"
    local = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def _read_one(
        self, file: Path, symbols: list[str] | None, start: dt.date | None, end: dt.date | None
    ) -> FetchResult:
        location = str(file)
        table, truncated = read_raw_table(file)
        bars, rejects = parse_table(
            table, location=location, symbol=symbol_from_filename(file), symbols=symbols
        )
        if start is not None:
            bars = bars.filter(pl.col("session") >= start)
        if end is not None:
            bars = bars.filter(pl.col("session") <= end)
        # A truncated file is a file-level failure (named in errors); its complete rows are kept.
        errors = {location: truncated.message()} if truncated is not None else {}
        return FetchResult(bars=bars, rejects=tuple(rejects), errors=errors, raw_path=location)

    def fetch(self, symbols: list[str] | None, start: dt.date | None, end: dt.date | None) -> FetchResult:
        """Read every file; a file that fails is named in ``errors`` and the others still count."""
        files = list_files(self.path)
        wanted = {s.upper() for s in symbols} if symbols else None
        progress = Progress("read files", total=len(files))
        results: list[FetchResult] = []
        for file in files:
            try:
                res = self._read_one(file, symbols, start, end)
            except DataError as err:
                # A file that cannot be read at all has no rows to quarantine: it is a named failure.
                res = FetchResult(bars=pl.DataFrame(), errors={str(file): str(err)})
            results.append(res)
            progress.advance(1, res.bars.height)
        progress.finish()
        merged = merge_results(results, raw_path=str(self.path.resolve()))
        if wanted is not None and not merged.bars.height and not merged.errors:
            raise SourceError(f"files source: none of {sorted(wanted)} found under {self.path}")
        return merged
