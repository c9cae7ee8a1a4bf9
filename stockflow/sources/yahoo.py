"""The ``yfinance`` source: daily bars from Yahoo Finance through the yfinance package.

yfinance prints and swallows most failures and hands back an empty frame; we ask it to raise and treat
an empty answer as a per-symbol error, so nothing empty is ever passed on as success. A ``session``
(requests- or curl_cffi-compatible) can be given, which is how the tests run it offline.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import polars as pl

from stockflow.errors import RetryableError, SourceError
from stockflow.logs import Progress
from stockflow.sources.base import (
    FetchResult,
    clip_to_range,
    conform_fetch,
    empty_fetch_frame,
    merge_results,
)


class YFinanceSource:
    """Daily bars from Yahoo Finance (auto-adjusted for splits and dividends)."""

    name = "yfinance"
    local = False

    def __init__(
        self,
        raw_dir: Path | None = None,
        session: Any = None,
        cache_dir: Path | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        self.raw_dir = raw_dir
        self.session = session
        self.cache_dir = cache_dir
        self.timeout_s = timeout_s

    def _history(self, symbol: str, start: dt.date | None, end: dt.date | None) -> Any:
        import yfinance as yf

        if self.cache_dir is not None:
            # yfinance keeps a timezone/cookie cache; keep it in our data dir, not in ~/.cache.
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(self.cache_dir))
        kwargs: dict[str, Any] = {
            "interval": "1d",
            "auto_adjust": True,
            "actions": False,
            "timeout": self.timeout_s,
        }
        if start is None and end is None:
            kwargs["period"] = "max"
        else:
            kwargs["start"] = (start or dt.date(1970, 1, 2)).isoformat()
            # yfinance's end is exclusive.
            kwargs["end"] = ((end or dt.date.today()) + dt.timedelta(days=1)).isoformat()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # raise_errors is the per-call switch
            return yf.Ticker(symbol, session=self.session).history(raise_errors=True, **kwargs)

    def fetch(self, symbols: list[str] | None, start: dt.date | None, end: dt.date | None) -> FetchResult:
        """Bars per symbol; a failing symbol lands in ``errors`` with yfinance's reason."""
        if not symbols:
            raise SourceError("yfinance source needs a symbol list (settings data.symbols or --symbols)")
        from yfinance.exceptions import YFRateLimitError

        results: list[FetchResult] = []
        progress = Progress("fetch yfinance", total=len(symbols), unit="bars")
        for raw_sym in symbols:
            sym = raw_sym.strip().upper()
            try:
                hist = self._history(sym, start, end)
            except YFRateLimitError as err:
                raise RetryableError(f"yfinance rate limited (HTTP 429): {err}") from None
            except Exception as err:
                results.append(
                    FetchResult(
                        bars=empty_fetch_frame(),
                        errors={sym: f"yfinance failed for {sym}: {type(err).__name__}: {err}"},
                    )
                )
                progress.advance(1)
                continue
            if hist is None or len(hist) == 0:
                results.append(
                    FetchResult(
                        bars=empty_fetch_frame(),
                        errors={sym: f"yfinance returned no rows for {sym} ({start}..{end})"},
                        empty=(sym,),
                    )
                )
                progress.advance(1)
                continue
            raw_path = self._save_raw(sym, hist)
            bars = clip_to_range(self._to_frame(sym, hist), start, end)
            results.append(FetchResult(bars=bars, raw_path=raw_path))
            progress.advance(1, bars.height)
        progress.finish()
        return merge_results(results, raw_path=str(self.raw_dir) if self.raw_dir else None)

    def _save_raw(self, sym: str, hist: Any) -> str | None:
        if self.raw_dir is None:
            return None
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        path = self.raw_dir / f"yfinance_{sym.replace('^', '_')}.csv"
        hist.to_csv(path)
        return str(path)

    @staticmethod
    def _to_frame(sym: str, hist: Any) -> pl.DataFrame:
        idx = hist.index
        if getattr(idx, "tz", None) is not None:
            idx = idx.tz_convert("America/New_York")
        sessions = [ts.date() for ts in idx]
        df = pl.DataFrame(
            {
                "symbol": [sym] * len(hist),
                "session": sessions,
                **{
                    c.lower(): hist[c].astype("float64").to_numpy()
                    for c in ("Open", "High", "Low", "Close", "Volume")
                },
                "_location": [f"yfinance:{sym}"] * len(hist),
            }
        )
        return conform_fetch(df)
