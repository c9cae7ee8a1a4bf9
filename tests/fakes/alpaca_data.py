"""A wire-level fake of Alpaca's market-data bars API on loopback, for the real alpaca-py client.

Serves ``GET /v2/stocks/bars`` (multi-symbol) and ``GET /v2/stocks/{symbol}/bars`` the way Alpaca does:
key headers checked (401 without, 403 with a wrong key), ``limit`` + ``next_page_token`` paging across
symbols, ``start``/``end`` filtering, unknown symbols simply absent from the answer, malformed symbols
answered 400, and injectable bursts of 429. Every request is logged for assertions.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
KEY_ID = "PKTESTKEY"
SECRET = "test-secret-value"
_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


def make_bar(day: dt.date, close: float, volume: float = 1_000_000.0) -> dict[str, Any]:
    """One daily bar as Alpaca sends it: ``t`` is midnight New York time in UTC."""
    t = dt.datetime.combine(day, dt.time(), tzinfo=NY).astimezone(dt.UTC)
    return {
        "t": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": round(close * 0.99, 4),
        "h": round(close * 1.01, 4),
        "l": round(close * 0.98, 4),
        "c": close,
        "v": volume,
        "n": 1000,
        "vw": close,
    }


@dataclass
class FakeAlpacaData:
    """State of the fake: bars per symbol, page size, and failures to inject."""

    bars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 1000
    key_id: str = KEY_ID
    secret: str = SECRET
    fail_next: list[int] = field(default_factory=list)  # statuses answered to the next requests
    delay_s: float = 0.0  # answer this late (to exercise client timeouts)
    ignore_range: bool = False  # answer every bar, whatever start/end were asked (a sloppy provider)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, *statuses: int) -> None:
        """Answer the next ``len(statuses)`` requests with these HTTP statuses (e.g. 429, 429)."""
        with self._lock:
            self.fail_next.extend(statuses)

    # -- request handling -------------------------------------------------------------------------

    def _select(self, symbols: list[str], start: str | None, end: str | None) -> list[tuple[str, dict]]:
        def ts(v: str, default: dt.datetime) -> dt.datetime:
            if not v:
                return default
            if len(v) == 10:  # a date means midnight New York time
                return dt.datetime.combine(dt.date.fromisoformat(v), dt.time(), tzinfo=NY)
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)

        lo = ts(start or "", dt.datetime.min.replace(tzinfo=dt.UTC))
        hi = ts(end or "", dt.datetime.max.replace(tzinfo=dt.UTC))
        out = []
        for sym in sorted(set(symbols)):
            for bar in self.bars.get(sym, []):
                t = dt.datetime.fromisoformat(bar["t"].replace("Z", "+00:00"))
                if self.ignore_range or lo <= t <= hi:
                    out.append((sym, bar))
        return out

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, dict]:
        """Status and JSON body for one request."""
        with self._lock:
            self.requests.append({"method": method, "path": path, "query": query})
            injected = self.fail_next.pop(0) if self.fail_next else None
        if self.delay_s:
            time.sleep(self.delay_s)
        key, secret = headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")
        if not key or not secret:
            return 401, {"code": 40110000, "message": "request is not authorized"}
        if key != self.key_id or secret != self.secret:
            return 403, {"message": "forbidden"}
        if injected is not None:
            return injected, {"code": 42910000, "message": "too many requests"} if injected == 429 else {
                "message": f"injected {injected}"
            }
        m = re.fullmatch(r"/v2/stocks/([^/]+)/bars", path)
        if path == "/v2/stocks/bars":
            symbols = [s for s in (query.get("symbols", [""])[0]).split(",") if s]
            single = None
        elif m:
            symbols, single = [m.group(1)], m.group(1)
        else:
            return 404, {"message": "not found"}
        if not symbols:
            return 400, {"code": 40010001, "message": "missing symbols"}
        for s in symbols:
            if not _SYMBOL_RE.match(s):
                return 400, {"code": 40010001, "message": f"invalid symbol: {s}"}
        if query.get("timeframe", ["1Day"])[0] not in ("1Day", "1D"):
            return 422, {"code": 42210000, "message": "only 1Day bars in this fake"}
        limit = min(
            int(query.get("limit", [str(self.page_size)])[0] or self.page_size), self.page_size, 10_000
        )
        token = query.get("page_token", [None])[0]
        offset = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        rows = self._select(symbols, query.get("start", [None])[0], query.get("end", [None])[0])
        page = rows[offset : offset + limit]
        next_token = (
            base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
            if offset + limit < len(rows)
            else None
        )
        if single is not None:
            return 200, {"bars": [b for _, b in page], "symbol": single, "next_page_token": next_token}
        grouped: dict[str, list[dict]] = {}
        for sym, bar in page:
            grouped.setdefault(sym, []).append(bar)
        return 200, {"bars": grouped, "next_page_token": next_token}


def _handler(fake: FakeAlpacaData) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            status, body = fake.handle("GET", url.path, parse_qs(url.query), self.headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


@contextmanager
def serve(fake: FakeAlpacaData) -> Iterator[str]:
    """Run ``fake`` on 127.0.0.1 (random port) in a thread; yields the base URL for ``url_override``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, name="fake-alpaca-data", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
