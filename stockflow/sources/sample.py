"""The ``sample`` source: real daily bars shipped inside PyPI packages, so the default run works offline.

- ``bokeh_sampledata`` stocks (Quandl WIKI prices, public domain): AAPL, IBM, MSFT, GOOG (and FB),
  2000-03-01 .. 2013-03-01. The source's open/high/low/close are unadjusted; we scale them by the
  source's own ``adj_close / close`` so that a split is not a -50% day (volume scaled inversely).
- ``arch.data`` index levels 1999-2018: S&P 500 as ``^GSPC`` and NASDAQ Composite as ``^IXIC``.

No synthetic prices: every value comes from those files, which are also the kept raw copy.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import zlib
from pathlib import Path

import polars as pl

from stockflow.errors import SourceError
from stockflow.sources.base import FetchResult, merge_results
from stockflow.sources.parsing import parse_table

STOCKS = ("AAPL", "IBM", "MSFT", "GOOG", "FB")
INDICES = {"^GSPC": "sp500", "^IXIC": "nasdaq"}
SYMBOLS = (*STOCKS, *INDICES)


def _package_dir(package: str) -> Path:
    # find_spec locates a top-level package without importing it (importing arch costs seconds).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"sample source: the package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def bokeh_stocks_path() -> Path:
    """The gzip CSV of bokeh_sampledata's stocks (no download needed: it ships in the wheel)."""
    return _package_dir("bokeh_sampledata") / "_data" / "stocks.csv.gz"


def arch_index_path(name: str) -> Path:
    """The gzip CSV of one of arch.data's index data sets (``sp500``, ``nasdaq``)."""
    return _package_dir("arch") / "data" / name / f"{name}.csv.gz"


def _read_gz_csv(path: Path) -> pl.DataFrame:
    data = zlib.decompress(path.read_bytes(), wbits=31)
    return pl.read_csv(io.BytesIO(data), infer_schema=False)


class SampleSource:
    """Bundled real data (see module docstring)."""

    name = "sample"
    local = True

    def fetch(self, symbols: list[str] | None, start: dt.date | None, end: dt.date | None) -> FetchResult:
        """Bars of the requested sample symbols; unknown symbols are named in ``errors``."""
        wanted = [s.strip().upper() for s in symbols] if symbols else list(SYMBOLS)
        errors = {
            s: f"not in the sample data (offers {', '.join(SYMBOLS)})" for s in wanted if s not in SYMBOLS
        }
        results: list[FetchResult] = []
        stocks = [s for s in wanted if s in STOCKS]
        if stocks:
            path = bokeh_stocks_path()
            bars, rejects = parse_table(
                _read_gz_csv(path), location=str(path), symbols=stocks, keep_adj_close=True
            )
            factor = pl.col("adj_close") / pl.col("close")
            bars = bars.with_columns(
                *[(pl.col(c) * factor).alias(c) for c in ("open", "high", "low", "close")],
                (pl.col("volume") / factor).round(0).alias("volume"),
            ).drop("adj_close")
            results.append(FetchResult(bars=bars, rejects=tuple(rejects), raw_path=str(path)))
        for sym in (s for s in wanted if s in INDICES):
            path = arch_index_path(INDICES[sym])
            bars, rejects = parse_table(_read_gz_csv(path), location=str(path), symbol=sym)
            results.append(FetchResult(bars=bars, rejects=tuple(rejects), raw_path=str(path)))
        merged = merge_results(results)
        bars = merged.bars
        if start is not None:
            bars = bars.filter(pl.col("session") >= start)
        if end is not None:
            bars = bars.filter(pl.col("session") <= end)
        if not results:
            raise SourceError(
                f"sample source: none of {wanted} is in the sample data (offers {', '.join(SYMBOLS)})"
            )
        paths = sorted({r.raw_path for r in results if r.raw_path})
        return FetchResult(
            bars=bars, rejects=merged.rejects, errors={**merged.errors, **errors}, raw_path="; ".join(paths)
        )
