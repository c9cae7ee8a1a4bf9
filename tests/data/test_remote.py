"""Remote sources over the wire: alpaca-py against our loopback fake, yfinance with canned HTTP."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests
from requests.adapters import BaseAdapter
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from stockflow.db.models_data import BarRow, IngestRun
from stockflow.errors import RetryableError, SourceError
from stockflow.ingest import run_ingest
from stockflow.sources.alpaca import AlpacaSource
from stockflow.store.bars import load_bars
from tests.data.conftest import alpaca_settings, make_settings, trading_days
from tests.fakes.alpaca_data import FakeAlpacaData, make_bar

DAYS = trading_days(12)


def _fill(fake: FakeAlpacaData, days: list[dt.date]) -> None:
    for i, sym in enumerate(("AAPL", "MSFT")):
        fake.bars.setdefault(sym, []).extend(make_bar(d, 100.0 * (i + 1) + j) for j, d in enumerate(days))


def test_alpaca_pages_retries_429_and_isolates_unknown_symbols(
    sqlite_engine: Engine, tmp_path: Path, fake_alpaca: tuple[FakeAlpacaData, str]
) -> None:
    fake, url = fake_alpaca
    _fill(fake, DAYS[:10])
    fake.inject(429, 429)  # a burst of rate limiting, absorbed by the client's retries
    settings = alpaca_settings(tmp_path, url)
    report = run_ingest(
        settings, sqlite_engine, source="alpaca", symbols=["AAPL", "MSFT", "ZZZZ"], start=DAYS[0]
    )
    assert report.rows_stored == 20 and set(report.symbols_ok) == {"AAPL", "MSFT"}
    assert list(report.symbols_failed) == ["ZZZZ"] and "no bars" in report.symbols_failed["ZZZZ"]
    bars = load_bars(sqlite_engine)
    assert bars.filter(pl.col("symbol") == "MSFT")["close"].to_list() == [200.0 + j for j in range(10)]
    assert bars["session"].unique().sort().to_list() == DAYS[:10]  # midnight New York -> the session date
    pages = [r for r in fake.requests if r["path"] == "/v2/stocks/bars"]
    assert len(pages) == 2 + 4  # two 429s, then 20 bars in pages of 5
    assert [("page_token" in p["query"]) for p in pages[2:]] == [False, True, True, True]
    assert pages[-1]["query"]["feed"] == ["iex"] and pages[-1]["query"]["adjustment"] == ["all"]
    raw = Path(report.raw_path or "")
    assert raw.is_relative_to(settings.data_dir / "raw" / str(report.ingest_run_id))
    saved = json.loads(next(raw.glob("alpaca_*.json")).read_text())
    assert len(saved["AAPL"]) == 10

    # The single-symbol endpoint pages the same way.
    auth = {"APCA-API-KEY-ID": "PKTESTKEY", "APCA-API-SECRET-KEY": "test-secret-value"}
    one = requests.get(
        f"{url}/v2/stocks/AAPL/bars", params={"timeframe": "1Day", "limit": 3}, headers=auth, timeout=5
    ).json()
    assert one["symbol"] == "AAPL" and len(one["bars"]) == 3 and one["next_page_token"]
    assert requests.get(f"{url}/v2/stocks/AAPL/bars", timeout=5).status_code == 401

    # Incremental: the next run asks only for sessions after the last stored one.
    _fill(fake, DAYS[10:12])
    fake.requests.clear()
    again = run_ingest(settings, sqlite_engine, source="alpaca", symbols=["AAPL", "MSFT"])
    assert again.rows_stored == 4 and not again.symbols_failed
    first = fake.requests[0]["query"]
    assert first["start"][0].startswith((DAYS[9] + dt.timedelta(days=1)).isoformat())


def test_alpaca_bad_key_is_a_clear_error_and_nothing_is_stored(
    engine: Engine, tmp_path: Path, fake_alpaca: tuple[FakeAlpacaData, str]
) -> None:
    fake, url = fake_alpaca
    _fill(fake, DAYS)
    settings = alpaca_settings(tmp_path, url, secret="wrong-secret")
    with pytest.raises(SourceError, match=r"alpaca rejected the API key \(HTTP 403"):
        run_ingest(settings, engine, source="alpaca", start=DAYS[0])
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(BarRow)) == 0
        run = s.scalars(select(IngestRun)).one()
    assert run.status == "failed" and "HTTP 403" in (run.error or "")
    assert "wrong-secret" not in (run.error or "")


def test_alpaca_timeouts_and_missing_keys(
    tmp_path: Path, fake_alpaca: tuple[FakeAlpacaData, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_alpaca
    _fill(fake, DAYS)
    fake.inject(503, 503, 503, 503)  # a server error outlasting the client's retries is transient
    src = AlpacaSource(alpaca_settings(tmp_path, url, rate_limit_retries=0))
    with pytest.raises(RetryableError, match="HTTP 503"):
        src.fetch(["AAPL"], DAYS[0], DAYS[-1])
    fake.fail_next.clear()
    # A server that does not answer in time fails with the configured timeout instead of hanging.
    fake.delay_s = 3.0
    slow = AlpacaSource(alpaca_settings(tmp_path, url, http_timeout_s=0.3))
    with pytest.raises(RetryableError, match="unreachable: ReadTimeout"):
        slow.fetch(["AAPL"], DAYS[0], DAYS[-1])
    fake.delay_s = 0.0
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(SourceError, match="needs API keys: set APCA_API_KEY_ID"):
        AlpacaSource(make_settings(tmp_path)).fetch(["AAPL"], None, None)


class _CannedYahoo(BaseAdapter):
    """Yahoo's chart API at the HTTP boundary: GOOD has three bars, EMPTY none, everything else 404."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        r = requests.Response()
        r.url, r.request = str(request.url), request
        r.headers["Content-Type"] = "application/json; charset=utf-8"
        url = str(request.url)
        meta = {
            "currency": "USD",
            "exchangeTimezoneName": "America/New_York",
            "timezone": "EST",
            "instrumentType": "EQUITY",
            "gmtoffset": -18000,
            "dataGranularity": "1d",
            "range": "",
            "regularMarketPrice": 1.0,
            "validRanges": ["1d"],
        }
        if "/chart/GOOD" in url:
            ts = [int(dt.datetime.combine(d, dt.time(14, 30), tzinfo=dt.UTC).timestamp()) for d in DAYS[:3]]
            quote = {
                "open": [1, 2, 3],
                "high": [2, 3, 4],
                "low": [0.5, 1, 2],
                "close": [1.5, 2.5, 3.5],
                "volume": [10, 20, 30],
            }
            body: Any = {
                "chart": {
                    "result": [
                        {
                            "meta": {**meta, "symbol": "GOOD"},
                            "timestamp": ts,
                            "indicators": {"quote": [quote], "adjclose": [{"adjclose": quote["close"]}]},
                        }
                    ],
                    "error": None,
                }
            }
            r.status_code = 200
        elif "/chart/EMPTY" in url:
            body = {
                "chart": {
                    "result": [{"meta": {**meta, "symbol": "EMPTY"}, "indicators": {"quote": [{}]}}],
                    "error": None,
                }
            }
            r.status_code = 200
        elif "getcrumb" in url:
            r.status_code, r._content = 200, b"crumb"
            return r
        elif "fc.yahoo.com" in url:
            r.status_code, r._content = 200, b""
            return r
        else:
            body = {
                "chart": {
                    "result": None,
                    "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
                }
            }
            r.status_code = 404
        r._content = json.dumps(body).encode()
        return r

    def close(self) -> None:
        pass


def _yahoo_session() -> requests.Session:
    s = requests.Session()
    s.mount("https://", _CannedYahoo())
    s.mount("http://", _CannedYahoo())
    return s


def test_yfinance_failures_are_errors_never_empty_success(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    report = run_ingest(
        settings,
        sqlite_engine,
        source="yfinance",
        symbols=["GOOD", "NOPE", "EMPTY"],
        start=DAYS[0],
        end=DAYS[5],
        http_session=_yahoo_session(),
    )
    assert report.rows_stored == 3 and report.symbols_ok == ("GOOD",)
    assert set(report.symbols_failed) == {"NOPE", "EMPTY"}
    assert "yfinance" in report.symbols_failed["NOPE"] and "EMPTY" in report.symbols_failed["EMPTY"]
    assert load_bars(sqlite_engine)["session"].to_list() == DAYS[:3]
    assert (settings.data_dir / "raw" / str(report.ingest_run_id) / "yfinance_GOOD.csv").exists()
    with pytest.raises(SourceError, match="nothing could be fetched"):
        run_ingest(
            settings,
            sqlite_engine,
            source="yfinance",
            symbols=["NOPE"],
            start=DAYS[0],
            end=DAYS[5],
            http_session=_yahoo_session(),
        )


def test_alpaca_bars_outside_the_requested_range_are_dropped(
    tmp_path: Path, fake_alpaca: tuple[FakeAlpacaData, str]
) -> None:
    """Issue 10 defect 5: a provider answering more than [start, end] must not widen the fetch."""
    fake, url = fake_alpaca
    _fill(fake, DAYS)
    fake.ignore_range = True
    got = AlpacaSource(alpaca_settings(tmp_path, url)).fetch(["AAPL"], DAYS[3], DAYS[5])
    assert got.bars["session"].unique().sort().to_list() == DAYS[3:6]


def test_apca_environment_keys_reach_the_data_source(
    tmp_path: Path, fake_alpaca: tuple[FakeAlpacaData, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.alpaca_data import KEY_ID, SECRET

    fake, url = fake_alpaca
    _fill(fake, DAYS)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    settings = make_settings(tmp_path, data={"alpaca_data_url": url, "symbols": ["AAPL"]})
    assert AlpacaSource(settings).fetch(["AAPL"], DAYS[0], DAYS[1]).bars.height == 2


def test_alpaca_up_to_date_store_is_a_normal_day(
    sqlite_engine: Engine, tmp_path: Path, fake_alpaca: tuple[FakeAlpacaData, str]
) -> None:
    """Issue 10 defect 5: a fetch that finds no new bar for any symbol (the store is up to date) is a
    normal day with nothing new, not "nothing could be fetched"; an unknown symbol is still an error."""
    fake, url = fake_alpaca
    _fill(fake, DAYS[:10])
    settings = alpaca_settings(tmp_path, url)
    first = run_ingest(settings, sqlite_engine, source="alpaca", symbols=["AAPL", "MSFT"], start=DAYS[0])
    assert first.rows_stored == 20
    again = run_ingest(settings, sqlite_engine, source="alpaca", symbols=["AAPL", "MSFT"], start=DAYS[0])
    assert again.rows_stored == 0 and not again.symbols_failed
    mixed = run_ingest(
        settings, sqlite_engine, source="alpaca", symbols=["AAPL", "MSFT", "ZZZZ"], start=DAYS[0]
    )
    assert list(mixed.symbols_failed) == ["ZZZZ"]
