"""The ``alpaca`` source: daily bars from Alpaca's market-data API through alpaca-py.

alpaca-py's ``StockHistoricalDataClient`` follows ``next_page_token`` itself and retries 429/504 a few
times; it sets no HTTP timeout, so we give its session one. Keys come from the one resolver the broker
uses too (:mod:`stockflow.config.credentials`: settings, ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``,
or a Prefect Secret block). Bars outside the requested [start, end] are dropped. A rejected key stops
the whole fetch (nothing is stored); a symbol Alpaca does not know is a per-symbol error and the
others are kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import requests

from stockflow.config import Settings
from stockflow.config.credentials import alpaca_keys as resolve_keys
from stockflow.errors import ConfigError, RetryableError, SourceError
from stockflow.logs import Progress, get_logger
from stockflow.sources.base import FetchResult, clip_to_range, conform_fetch, empty_fetch_frame

NEW_YORK = ZoneInfo("America/New_York")
_CHUNK_SYMBOLS = 100  # symbols per multi-symbol request (keeps URLs short)


class _TimeoutSession(requests.Session):
    """A requests session that never waits forever (alpaca-py passes no timeout)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(method, url, *args, **kwargs)


def alpaca_keys(settings: Settings) -> tuple[str, str]:
    """API key id and secret from the shared resolver, or a clear :class:`SourceError`."""
    try:
        keys = resolve_keys(settings.broker, who="alpaca source")
    except ConfigError as err:
        raise SourceError(str(err)) from None
    return keys.key_id, keys.secret


def _error_text(err: Exception) -> tuple[int | None, str]:
    status = getattr(err, "status_code", None)
    text = str(err)
    with contextlib.suppress(ValueError, AttributeError):
        text = json.loads(text).get("message", text)
    return status, text


class AlpacaSource:
    """Daily bars from Alpaca (see module docstring)."""

    name = "alpaca"
    local = False

    def __init__(self, settings: Settings, raw_dir: Path | None = None) -> None:
        self.settings = settings
        self.raw_dir = raw_dir
        self._client: Any = None

    def client(self) -> Any:
        """The alpaca-py client, built once, with timeouts and our 429 retry policy."""
        if self._client is None:
            from alpaca.data.historical import StockHistoricalDataClient

            key, secret = alpaca_keys(self.settings)
            d = self.settings.data
            client: Any = StockHistoricalDataClient(
                key, secret, raw_data=True, url_override=d.alpaca_data_url
            )
            # alpaca-py exposes no constructor options for these on the data client.
            client._session = _TimeoutSession(d.http_timeout_s)
            client._retry = d.rate_limit_retries
            client._retry_wait = d.rate_limit_wait_s
            self._client = client
        return self._client

    def _request(
        self, symbols: list[str], start: dt.date | None, end: dt.date | None
    ) -> dict[str, list[dict]]:
        from alpaca.common.exceptions import APIError
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        d = self.settings.data
        req = StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=TimeFrame.Day,
            start=dt.datetime.combine(start or dt.date(1990, 1, 1), dt.time(), tzinfo=NEW_YORK),
            end=dt.datetime.combine(end, dt.time(23, 59), tzinfo=NEW_YORK) if end else None,
            adjustment=Adjustment(d.alpaca_adjustment),
            feed=DataFeed(d.alpaca_feed),
        )
        try:
            return self.client().get_stock_bars(req) or {}
        except APIError as err:
            status, text = _error_text(err)
            if status in (401, 403):
                raise SourceError(
                    f"alpaca rejected the API key (HTTP {status}: {text}); check APCA_API_KEY_ID/"
                    "APCA_API_SECRET_KEY and the data subscription. Nothing was stored."
                ) from None
            if status == 429 or (status is not None and status >= 500):
                raise RetryableError(f"alpaca market data answered HTTP {status}: {text}") from None
            raise _SymbolError(status, text) from None
        except (requests.Timeout, requests.ConnectionError) as err:
            raise RetryableError(f"alpaca market data unreachable: {type(err).__name__}: {err}") from None

    def _save_raw(self, payload: dict[str, Any], tag: str) -> str | None:
        if self.raw_dir is None:
            return None
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        path = self.raw_dir / f"alpaca_{tag}.json"
        path.write_text(json.dumps(payload, default=str))
        return str(self.raw_dir)

    def fetch(self, symbols: list[str] | None, start: dt.date | None, end: dt.date | None) -> FetchResult:
        """Bars for ``symbols``; a symbol Alpaca rejects or returns nothing for lands in ``errors``."""
        if not symbols:
            raise SourceError("alpaca source needs a symbol list (settings data.symbols or --symbols)")
        symbols = [s.strip().upper() for s in symbols]
        log = get_logger()
        progress = Progress("fetch alpaca", total=len(symbols), unit="bars")
        payload: dict[str, list[dict]] = {}
        errors: dict[str, str] = {}
        for i in range(0, len(symbols), _CHUNK_SYMBOLS):
            chunk = symbols[i : i + _CHUNK_SYMBOLS]
            try:
                got = self._request(chunk, start, end)
            except _SymbolError as err:
                # One bad symbol fails the whole multi-symbol request: ask one by one to isolate it.
                log.warning("alpaca refused a multi-symbol request (%s); retrying symbol by symbol", err)
                got = {}
                for sym in chunk:
                    try:
                        got.update(self._request([sym], start, end))
                    except _SymbolError as one:
                        errors[sym] = f"alpaca refused {sym}: {one}"
            payload.update(got)
            progress.advance(len(chunk), sum(len(v) for v in got.values()))
        progress.finish()
        span = f"{start or 'the beginning'} .. {end or 'now'}"
        empty = tuple(s for s in symbols if s not in errors and not payload.get(s))
        for sym in empty:
            errors[sym] = f"alpaca returned no bars for {sym} in {span} (unknown symbol or no trading)"
        raw_path = self._save_raw(payload, f"{start or 'all'}_{end or 'now'}") if payload else None
        return FetchResult(
            bars=clip_to_range(bars_from_payload(payload), start, end),
            errors=errors,
            raw_path=raw_path,
            empty=empty,
        )


class _SymbolError(Exception):
    def __init__(self, status: int | None, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")


def bars_from_payload(payload: dict[str, list[dict]]) -> pl.DataFrame:
    """Alpaca's ``{symbol: [{t,o,h,l,c,v,...}]}`` -> fetch frame; ``t`` (UTC) becomes the New York date."""
    rows = [
        (sym, b.get("t"), b.get("o"), b.get("h"), b.get("l"), b.get("c"), b.get("v"))
        for sym, bars in payload.items()
        for b in bars
    ]
    if not rows:
        return empty_fetch_frame()
    df = pl.DataFrame(
        rows,
        schema={
            "symbol": pl.Utf8,
            "t": pl.Utf8,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    )
    df = df.with_columns(
        pl.col("t")
        .str.to_datetime(time_zone="UTC", strict=False)
        .dt.convert_time_zone("America/New_York")
        .dt.date()
        .alias("session"),
        pl.format("alpaca:{}", pl.col("symbol")).alias("_location"),
    )
    return conform_fetch(df)
