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


#: Default largest file read (bytes on disk or decompressed); see ``data.max_file_mb``.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_CHUNK = 16 * 1024 * 1024


def _too_big(location: str, size: int, max_bytes: int, what: str) -> DataError:
    return DataError(
        f"file too large: {size / 2**20:,.0f} MB {what}, above data.max_file_mb={max_bytes / 2**20:,.0f}; "
        "split it into smaller files (e.g. one per symbol) or raise data.max_file_mb",
        location=location,
        rule="file_too_large",
    )


def _gunzip(data: bytes, location: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, bool]:
    """Decompress every gzip member; on a truncated stream return what came out and ``True``. Stops
    with a ``file_too_large`` error as soon as the output passes ``max_bytes`` (no huge peak)."""
    out: list[bytes] = []
    total = 0
    while data:
        d = zlib.decompressobj(wbits=31)
        pending = data
        while pending and not d.eof:
            try:
                chunk = d.decompress(pending, _CHUNK)
            except zlib.error as err:
                raise DataError(f"corrupt gzip data: {err}", location=location, rule="corrupt_gzip") from None
            out.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_big(location, total, max_bytes, "once decompressed (at least)")
            pending = d.unconsumed_tail
        if not d.eof:
            out.append(d.flush())
            return b"".join(out), True
        data = d.unused_data
    return b"".join(out), False


def _separator_problem(first_line: bytes) -> str | None:
    """Why a CSV header is not comma-separated (``;`` or tab), else None."""
    head = first_line.decode("utf-8", "replace")
    if "," in head:
        return None
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if head.count(sep) >= 4:
            return (
                f"the columns are separated by {name}, not commas (header {head.strip()[:80]!r}); save the "
                "file as comma-separated CSV with '.' as the decimal point"
            )
    return None


def _ragged_rows(data: bytes, location: str) -> tuple[bytes, list[Reject]]:
    """Rows whose number of fields differs from the header's: rejects naming each row, and the data
    without them. (Only used after the fast reader failed; quoted commas are rare in bar files.)"""
    lines = data.split(b"\n")
    width = lines[0].count(b",")
    keep = [lines[0]]
    rejects: list[Reject] = []
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        n = line.count(b",")
        if n == width:
            keep.append(line)
            continue
        text = line.decode("utf-8", "replace").rstrip("\r")
        rejects.append(
            Reject(
                location=location,
                row=i,
                symbol=None,
                rule="ragged_row",
                detail=f"row has {n + 1} fields, the header has {width + 1}: {text[:120]!r}",
                raw={"line": text[:500]},
            )
        )
    return b"\n".join(keep) + b"\n", rejects


def read_raw_table(
    path: Path, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[pl.DataFrame, Reject | None, list[Reject]]:
    """Read a file as a table of strings. A truncated gzip yields its complete rows and a reject; rows
    with the wrong number of fields become ``ragged_row`` rejects and the rest of the file is read."""
    location = str(path)
    size = path.stat().st_size
    if size == 0:
        raise DataError("empty file (0 bytes)", location=location, rule="empty_file")
    if size > max_bytes:
        raise _too_big(location, size, max_bytes, "on disk")
    name = path.name.lower()
    data = path.read_bytes()
    truncated = False
    ragged: list[Reject] = []
    if name.endswith(".gz"):
        data, truncated = _gunzip(data, location, max_bytes)
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
        problem = _separator_problem(data[: data.find(b"\n") if b"\n" in data else len(data)])
        if problem:
            raise DataError(problem, location=location, rule="not_comma_separated")
        try:
            table = pl.read_csv(io.BytesIO(data), infer_schema=False)
        except Exception as err:
            data, ragged = _ragged_rows(data, location)
            if not ragged:
                msg = str(err).splitlines()[0]
                raise DataError(f"malformed CSV: {msg}", location=location, rule="malformed_csv") from None
            try:
                table = pl.read_csv(io.BytesIO(data), infer_schema=False)
            except Exception as err2:
                msg = str(err2).splitlines()[0]
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
    if table.height == 0 and reject is None and not ragged:
        raise DataError("no data rows (header only)", location=location, rule="empty_file")
    return table, reject, ragged


def _shift_rows(rows: pl.Series, removed: list[int]) -> pl.Series:
    """Row numbers of the table without the removed rows -> row numbers in the original file."""
    import numpy as np

    gone = np.sort(np.asarray(removed, dtype=np.int64))
    r = rows.to_numpy().astype(np.int64)
    # Each surviving row moves down by the number of removed rows at or before its final position.
    out = r.copy()
    for g in gone:
        out = np.where(out >= g, out + 1, out)
    return pl.Series(rows.name, out)


def _renumber(bars: pl.DataFrame, removed: list[int]) -> pl.DataFrame:
    from stockflow.sources.base import ROW_COL

    if not removed or bars.height == 0:
        return bars
    return bars.with_columns(_shift_rows(bars.get_column(ROW_COL), removed).alias(ROW_COL))


def _renumber_rejects(rejects: list[Reject], removed: list[int]) -> list[Reject]:
    from dataclasses import replace

    if not removed:
        return rejects
    out = []
    for r in rejects:
        if r.row is None:
            out.append(r)
            continue
        row = int(_shift_rows(pl.Series("r", [r.row]), removed)[0])
        out.append(replace(r, row=row))
    return out


class FilesSource:
    """Bars from local files (see module docstring)."""

    name = "files"
    local = True

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes

    def _read_one(
        self, file: Path, symbols: list[str] | None, start: dt.date | None, end: dt.date | None
    ) -> FetchResult:
        location = str(file)
        table, truncated, ragged = read_raw_table(file, self.max_bytes)
        bars, rejects = parse_table(
            table, location=location, symbol=symbol_from_filename(file), symbols=symbols
        )
        if ragged:
            # Row numbers count data rows; the parsed table skipped the ragged ones: renumber.
            bars = _renumber(bars, [r.row for r in ragged if r.row is not None])
            rejects = [*ragged, *_renumber_rejects(rejects, [r.row for r in ragged if r.row is not None])]
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
