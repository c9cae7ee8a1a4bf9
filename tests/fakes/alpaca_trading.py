"""A wire-level fake of Alpaca's trading API (v2) on 127.0.0.1, for alpaca-py's real ``TradingClient``
(``url_override``). It keeps an account, positions, orders and FILL activities in memory and can inject
faults: status answers before or after accepting an order (429 bursts, 504 after accept, 403), a hung
connection (sleep past the client's timeout, after accepting), partial fills, asynchronous rejects.

Alpaca's rules a small account meets are enforced as Alpaca does: an order opposite in side to an
open order of the same symbol is refused (403, code 40310000, "potential wash trade detected"); under
$25k equity an order that would be a 4th day trade in 5 business days is refused (403, code 40310100,
pattern day trading protection). Every answer carries ``X-Ratelimit-*`` headers; an injected 429 says
when the limit resets. The calendar has the 2024 NYSE holidays; ``next_day()`` moves the clock to the
next session. Splits and cash dividends (``split``/``dividend``) change positions and cash and are
announced on GET /v2/corporate_actions/announcements; open orders of a split symbol are cancelled.

Only what alpaca-py's TradingClient (and our adapter) call is implemented:
GET /v2/account, GET /v2/positions, GET /v2/orders, GET /v2/orders/{id},
GET /v2/orders:by_client_order_id, POST /v2/orders, DELETE /v2/orders/{id}, GET /v2/clock,
GET /v2/calendar, GET /v2/account/activities/FILL, GET /v2/account/activities (CSD/CSW),
GET /v2/corporate_actions/announcements.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API_KEY = "fake-key-id"
SECRET_KEY = "fake-secret-key"

_OPEN = {
    "new",
    "accepted",
    "pending_new",
    "partially_filled",
    "pending_cancel",
    "pending_replace",
    "held",
    "done_for_day",
    "accepted_for_bidding",
    "stopped",
    "suspended",
    "calculated",
    "pending_review",
}
#: NYSE full-day closures of 2024 (the fake's calendar skips them).
HOLIDAYS_2024 = frozenset(
    dt.date(2024, m, d)
    for m, d in [(1, 1), (1, 15), (2, 19), (3, 29), (5, 27), (6, 19), (7, 4), (9, 2), (11, 28), (12, 25)]
)
WASH_TRADE = {"code": 40310000, "message": "potential wash trade detected. use complex orders"}
PDT_DENIED = {"code": 40310100, "message": "trade denied due to pattern day trading protection"}
PDT_EQUITY = Decimal(25_000)
RATE_LIMIT = 200


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _num(d: Decimal | None) -> str | None:
    return None if d is None else format(d.normalize(), "f")


@dataclass
class Fault:
    """One injected fault: applies to the next ``times`` requests matching method and path prefix.

    kind: ``status`` (answer ``status``/``body`` without doing anything), ``accept_then_status`` (do the
    work, then answer ``status``), ``hang`` (do the work when ``accept``, then sleep ``seconds`` before
    answering), ``partial`` (the next order fills ``qty`` only and stays open), ``partial_then_cancel``
    (fills ``qty`` then is canceled by the broker), ``reject_async`` (accepted, then rejected).
    """

    kind: str
    method: str = "POST"
    path: str = "/v2/orders"
    times: int = 1
    status: int = 500
    body: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    accept: bool = True
    qty: Decimal = Decimal(0)


class FakeAlpacaTrading:
    """The fake server and its state. Use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        cash: float = 10_000.0,
        prices: dict[str, float] | None = None,
        fill_mode: str = "immediate",
        market_open: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.cash = Decimal(str(cash))
        self.prices: dict[str, Decimal] = {k: Decimal(str(v)) for k, v in (prices or {}).items()}
        self.fill_mode = fill_mode  # immediate: market orders fill at once; accept: they wait for fill()
        self.market_open = market_open
        self.next_open: dt.datetime | None = None  # overrides the clock's next open (e.g. a long closure)
        self.now = dt.datetime(2024, 1, 3, 15, 0, tzinfo=dt.UTC)
        self.positions: dict[str, dict[str, Decimal]] = {}  # symbol -> {qty, cost}
        self.orders: dict[str, dict[str, Any]] = {}
        self.activities: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.account_id = str(uuid.uuid4())
        self.holidays: set[dt.date] = set(HOLIDAYS_2024)
        self.last_equity: Decimal | None = None  # yesterday's close equity (None: equity now)
        self.open_filter_broken = False  # GET /v2/orders?status=open also returns final orders
        self.max_page = 500  # Alpaca's largest page of orders
        self.ratelimit_reset_s = 0.0  # how far ahead X-Ratelimit-Reset lies on an injected 429
        self.announcements: list[dict[str, Any]] = []
        self.cash_activities: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL for ``url_override`` (alpaca-py appends /v2/...)."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAlpacaTrading:
        """Listen on a random loopback port in a daemon thread."""
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (hung handler threads are daemons and die with the process)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAlpacaTrading:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------------
    def inject(self, kind: str, **kw: Any) -> Fault:
        """Queue a fault (see :class:`Fault`)."""
        if "qty" in kw:
            kw["qty"] = Decimal(str(kw["qty"]))
        f = Fault(kind=kind, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def count(self, method: str, path: str) -> int:
        """How many requests with this method and exact path were received."""
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and p == path)

    def set_price(self, symbol: str, price: float) -> None:
        """Set the price market orders fill at and positions are marked at."""
        with self.lock:
            self.prices[symbol] = Decimal(str(price))

    def fill(self, order_id: str, qty: float | Decimal | None = None, price: float | None = None) -> None:
        """Fill (part of) a working order at ``price`` (default: the symbol's price)."""
        with self.lock:
            o = self.orders[order_id]
            q = Decimal(str(qty)) if qty is not None else o["qty"] - o["filled_qty"]
            p = Decimal(str(price)) if price is not None else self.prices[o["symbol"]]
            self._execute(o, q, p)

    def fill_working(
        self, prices: dict[str, float] | None = None, *, low: dict[str, float] | None = None
    ) -> None:
        """Fill every working market order at its price; trigger sell stops whose stop >= ``low``."""
        with self.lock:
            for sym, p in (prices or {}).items():
                self.prices[sym] = Decimal(str(p))
            for o in list(self.orders.values()):
                if o["status"] not in _OPEN:
                    continue
                sym = o["symbol"]
                if o["type"] == "market":
                    self._execute(o, o["qty"] - o["filled_qty"], self.prices[sym])
                elif o["type"] == "stop" and low is not None and sym in low:
                    if Decimal(str(low[sym])) <= o["stop_price"]:
                        self._execute(o, o["qty"] - o["filled_qty"], min(o["stop_price"], self.prices[sym]))
                elif o["type"] == "limit":
                    px = self.prices[sym]
                    if (o["side"] == "buy" and px <= o["limit_price"]) or (
                        o["side"] == "sell" and px >= o["limit_price"]
                    ):
                        self._execute(o, o["qty"] - o["filled_qty"], o["limit_price"])

    def outside_order(self, symbol: str, side: str, qty: int, *, fill: bool = True) -> dict[str, Any]:
        """An order placed by someone else (the user in Alpaca's web UI)."""
        with self.lock:
            o = self._new_order(
                {
                    "symbol": symbol,
                    "side": side,
                    "qty": str(qty),
                    "type": "market",
                    "time_in_force": "day",
                    "client_order_id": f"web-{uuid.uuid4().hex[:8]}",
                }
            )
            if fill:
                self._execute(o, o["qty"], self.prices[symbol])
            return o

    def is_session(self, day: dt.date) -> bool:
        """True on a weekday that is not a holiday."""
        return day.weekday() < 5 and day not in self.holidays

    def next_day(self) -> dt.date:
        """Move the clock to 15:00 UTC of the next session (DAY orders still working expire)."""
        with self.lock:
            day = self.now.date() + dt.timedelta(days=1)
            while not self.is_session(day):
                day += dt.timedelta(days=1)
            self.last_equity = self.cash + self._market_value()
            for o in self.orders.values():
                if o["status"] in _OPEN and o["time_in_force"] == "day":
                    o["status"], o["updated_at"] = "expired", self.now
            self.now = dt.datetime.combine(day, dt.time(15, 0), tzinfo=dt.UTC)
            return day

    def late_fill(self, order_id: str, qty: float | Decimal | None = None) -> None:
        """A fill reported for an order already cancelled (cancel-then-filled): the status stays."""
        with self.lock:
            o = self.orders[order_id]
            status = o["status"]
            q = Decimal(str(qty)) if qty is not None else o["qty"] - o["filled_qty"]
            self._execute(o, q, self.prices[o["symbol"]])
            o["status"] = status

    def split(self, symbol: str, new_rate: int, old_rate: int = 1) -> dict[str, Any]:
        """A split effective today: qty x new/old, same cost, price / (new/old); open orders of the
        symbol are cancelled; the announcement is published."""
        with self.lock:
            ratio = Decimal(new_rate) / Decimal(old_rate)
            if symbol in self.positions:
                self.positions[symbol]["qty"] *= ratio
            if symbol in self.prices:
                self.prices[symbol] = self.prices[symbol] / ratio
            for o in self.orders.values():
                if o["symbol"] == symbol and o["status"] in _OPEN:
                    o["status"], o["canceled_at"], o["updated_at"] = "canceled", self._tick(), self.now
            return self._announce(symbol, "split", "stock_split", new_rate=new_rate, old_rate=old_rate)

    def dividend(self, symbol: str, cash_per_share: float) -> dict[str, Any]:
        """A cash dividend paid today on the position held."""
        with self.lock:
            held = self.positions.get(symbol, {"qty": Decimal(0)})["qty"]
            self.cash += held * Decimal(str(cash_per_share))
            return self._announce(symbol, "dividend", "cash", cash=cash_per_share)

    def _announce(self, symbol: str, ca_type: str, sub: str, **kw: Any) -> dict[str, Any]:
        day = self.now.date().isoformat()
        a = {
            "id": str(uuid.uuid4()),
            "corporate_action_id": f"CA{len(self.announcements) + 1:06d}",
            "ca_type": ca_type,
            "ca_sub_type": sub,
            "initiating_symbol": symbol,
            "initiating_original_cusip": "000000000",
            "target_symbol": symbol,
            "target_original_cusip": "000000000",
            "declaration_date": day,
            "ex_date": day,
            "record_date": day,
            "payable_date": day,
            "cash": str(kw.get("cash", 0)),
            "old_rate": str(kw.get("old_rate", 1)),
            "new_rate": str(kw.get("new_rate", 1)),
        }
        self.announcements.append(a)
        return a

    def deposit(self, amount: float) -> None:
        """Money moved into the account today (a CSD activity; negative: a withdrawal, CSW)."""
        with self.lock:
            t = self._tick()
            self.cash += Decimal(str(amount))
            self.cash_activities.append(
                {
                    "id": f"{t:%Y%m%d%H%M%S%f}000::{uuid.uuid4()}",
                    "activity_type": "CSD" if amount >= 0 else "CSW",
                    "date": t.date().isoformat(),
                    "transaction_time": _iso(t),
                    "net_amount": _num(Decimal(str(amount))),
                    "status": "executed",
                }
            )

    def day_trades(self) -> int:
        """Day trades (a symbol bought and sold on one day) in the last 5 sessions, today included."""
        days: list[dt.date] = []
        d = self.now.date()
        while len(days) < 5:
            if self.is_session(d):
                days.append(d)
            d -= dt.timedelta(days=1)
        sides: dict[tuple[dt.date, str], set[str]] = {}
        for a in self.activities:
            day = dt.datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")).date()
            if day in days:
                sides.setdefault((day, a["symbol"]), set()).add(a["side"])
        return sum(1 for v in sides.values() if len(v) == 2)

    def _would_day_trade(self, symbol: str, side: str) -> bool:
        today = self.now.date()
        return side == "sell" and any(
            a["symbol"] == symbol
            and a["side"] == "buy"
            and dt.datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")).date() == today
            for a in self.activities
        )

    def set_position(self, symbol: str, qty: int, avg_price: float) -> None:
        """Create a position out of thin air (an unexplained difference)."""
        with self.lock:
            self.positions[symbol] = {"qty": Decimal(qty), "cost": Decimal(qty) * Decimal(str(avg_price))}

    # -- the broker's logic ---------------------------------------------------------------------
    def _tick(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now

    def _new_order(self, body: dict[str, Any]) -> dict[str, Any]:
        t = self._tick()
        o = {
            "id": str(uuid.uuid4()),
            "client_order_id": body.get("client_order_id") or str(uuid.uuid4()),
            "symbol": body["symbol"],
            "side": body["side"],
            "qty": Decimal(str(body["qty"])),
            "type": body.get("type", "market"),
            "time_in_force": body.get("time_in_force", "day"),
            "limit_price": Decimal(str(body["limit_price"])) if body.get("limit_price") else None,
            "stop_price": Decimal(str(body["stop_price"])) if body.get("stop_price") else None,
            "status": "accepted" if not self.market_open else "new",
            "filled_qty": Decimal(0),
            "filled_avg_price": None,
            "created_at": t,
            "updated_at": t,
            "filled_at": None,
            "canceled_at": None,
        }
        self.orders[o["id"]] = o
        return o

    def _execute(self, o: dict[str, Any], qty: Decimal, price: Decimal) -> None:
        if qty <= 0:
            return
        t = self._tick()
        sign = 1 if o["side"] == "buy" else -1
        pos = self.positions.setdefault(o["symbol"], {"qty": Decimal(0), "cost": Decimal(0)})
        if sign > 0 or pos["qty"] <= 0:
            pos["cost"] += sign * qty * price
        else:
            pos["cost"] -= pos["cost"] / pos["qty"] * qty
        pos["qty"] += sign * qty
        if pos["qty"] == 0:
            del self.positions[o["symbol"]]
        self.cash -= sign * qty * price
        prev = o["filled_qty"]
        o["filled_avg_price"] = (
            price if not prev else (o["filled_avg_price"] * prev + price * qty) / (prev + qty)
        )
        o["filled_qty"] = prev + qty
        o["status"] = "filled" if o["filled_qty"] >= o["qty"] else "partially_filled"
        o["updated_at"] = t
        if o["status"] == "filled":
            o["filled_at"] = t
        self.activities.append(
            {
                "id": f"{t:%Y%m%d%H%M%S%f}000::{uuid.uuid4()}",
                "activity_type": "FILL",
                "transaction_time": _iso(t),
                "type": "fill" if o["status"] == "filled" else "partial_fill",
                "price": _num(price),
                "qty": _num(qty),
                "side": o["side"],
                "symbol": o["symbol"],
                "leaves_qty": _num(o["qty"] - o["filled_qty"]),
                "order_id": o["id"],
                "cum_qty": _num(o["filled_qty"]),
                "order_status": o["status"],
            }
        )

    def _reserved(self) -> Decimal:
        total = Decimal(0)
        for o in self.orders.values():
            if o["status"] in _OPEN and o["side"] == "buy":
                px = o["limit_price"] or o["stop_price"] or self.prices.get(o["symbol"], Decimal(0))
                total += (o["qty"] - o["filled_qty"]) * px
        return total

    def _market_value(self) -> Decimal:
        return sum(
            (p["qty"] * self.prices.get(s, p["cost"] / p["qty"]) for s, p in self.positions.items()),
            Decimal(0),
        )

    def account_json(self) -> dict[str, Any]:
        eq = self.cash + self._market_value()
        bp = max(self.cash - self._reserved(), Decimal(0))
        return {
            "id": self.account_id,
            "account_number": "PA0000FAKE",
            "status": "ACTIVE",
            "currency": "USD",
            "buying_power": _num(bp),
            "regt_buying_power": _num(bp),
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": _num(bp),
            "cash": _num(self.cash),
            "portfolio_value": _num(eq),
            "equity": _num(eq),
            "last_equity": _num(self.last_equity if self.last_equity is not None else eq),
            "long_market_value": _num(self._market_value()),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "sma": "0",
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-01T00:00:00Z",
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": False,
            "daytrade_count": self.day_trades(),
        }

    def order_json(self, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": o["id"],
            "client_order_id": o["client_order_id"],
            "created_at": _iso(o["created_at"]),
            "updated_at": _iso(o["updated_at"]),
            "submitted_at": _iso(o["created_at"]),
            "filled_at": _iso(o["filled_at"]) if o["filled_at"] else None,
            "expired_at": None,
            "canceled_at": _iso(o["canceled_at"]) if o["canceled_at"] else None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, o["symbol"])),
            "symbol": o["symbol"],
            "asset_class": "us_equity",
            "notional": None,
            "qty": _num(o["qty"]),
            "filled_qty": _num(o["filled_qty"]),
            "filled_avg_price": _num(o["filled_avg_price"]),
            "order_class": "simple",
            "order_type": o["type"],
            "type": o["type"],
            "side": o["side"],
            "time_in_force": o["time_in_force"],
            "limit_price": _num(o["limit_price"]),
            "stop_price": _num(o["stop_price"]),
            "status": o["status"],
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }

    def position_json(self, sym: str, p: dict[str, Decimal]) -> dict[str, Any]:
        px = self.prices.get(sym, p["cost"] / p["qty"])
        mv = p["qty"] * px
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, sym)),
            "symbol": sym,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "avg_entry_price": _num(p["cost"] / p["qty"]),
            "qty": _num(p["qty"]),
            "qty_available": _num(p["qty"]),
            "side": "long" if p["qty"] > 0 else "short",
            "market_value": _num(mv),
            "cost_basis": _num(p["cost"]),
            "unrealized_pl": _num(mv - p["cost"]),
            "unrealized_plpc": "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": _num(px),
            "lastday_price": _num(px),
            "change_today": "0",
        }

    def clock_json(self) -> dict[str, Any]:
        day = self.now.date()
        open_t = dt.datetime.combine(day, dt.time(14, 30), tzinfo=dt.UTC)
        close_t = dt.datetime.combine(day, dt.time(21, 0), tzinfo=dt.UTC)
        nxt = day + dt.timedelta(days=1)
        while not self.is_session(nxt):
            nxt += dt.timedelta(days=1)
        next_open = (
            open_t
            if not self.market_open and self.now < open_t
            else dt.datetime.combine(nxt, dt.time(14, 30), tzinfo=dt.UTC)
        )
        if self.next_open is not None:
            next_open = self.next_open
        return {
            "timestamp": _iso(self.now),
            "is_open": self.market_open,
            "next_open": _iso(next_open),
            "next_close": _iso(close_t if self.now < close_t else close_t + (next_open - open_t)),
        }

    def calendar_json(self, start: str | None, end: str | None) -> list[dict[str, Any]]:
        s = dt.date.fromisoformat(start) if start else self.now.date() - dt.timedelta(days=10)
        e = dt.date.fromisoformat(end) if end else self.now.date() + dt.timedelta(days=10)
        out, d = [], s
        while d <= e:
            if self.is_session(d):
                out.append(
                    {
                        "date": d.isoformat(),
                        "open": "09:30",
                        "close": "16:00",
                        "session_open": "0400",
                        "session_close": "2000",
                        "settlement_date": d.isoformat(),
                    }
                )
            d += dt.timedelta(days=1)
        return out

    def submit(self, body: dict[str, Any]) -> tuple[int, Any]:
        cid = body.get("client_order_id")
        if cid and any(o["client_order_id"] == cid for o in self.orders.values()):
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        sym = body.get("symbol")
        if sym not in self.prices:
            return 422, {"code": 40010001, "message": f'asset "{sym}" not found'}
        qty = Decimal(str(body.get("qty", "0")))
        if qty <= 0:
            return 422, {"code": 40010001, "message": "qty must be > 0"}
        if any(
            o["symbol"] == sym and o["side"] != body["side"] and o["status"] in _OPEN
            for o in self.orders.values()
        ):
            return 403, WASH_TRADE
        if (
            self.cash + self._market_value() < PDT_EQUITY
            and self._would_day_trade(sym, body["side"])
            and self.day_trades() >= 3
        ):
            return 403, PDT_DENIED
        if body["side"] == "buy":
            px = Decimal(str(body.get("limit_price") or body.get("stop_price") or self.prices[sym]))
            if qty * px > self.cash - self._reserved():
                return 403, {"code": 40310000, "message": "insufficient buying power"}
        else:
            held = self.positions.get(sym, {"qty": Decimal(0)})["qty"]
            pending = sum(
                (
                    o["qty"] - o["filled_qty"]
                    for o in self.orders.values()
                    if o["status"] in _OPEN and o["side"] == "sell" and o["symbol"] == sym
                ),
                Decimal(0),
            )
            if qty > held - pending:
                return 403, {
                    "code": 40310000,
                    "message": "insufficient qty available for order "
                    f"(requested: {qty}, available: {held - pending})",
                }
        o = self._new_order(body)
        fault = self._take_fault(
            "POST", "/v2/orders", kinds=("partial", "partial_then_cancel", "reject_async")
        )
        if fault is not None and fault.kind in ("partial", "partial_then_cancel"):
            self._execute(o, fault.qty, self.prices[sym])
            if fault.kind == "partial_then_cancel":
                o["status"], o["canceled_at"] = "canceled", self._tick()
        elif fault is not None and fault.kind == "reject_async":
            o["status"] = "rejected"
        elif self.fill_mode == "immediate" and o["type"] == "market" and self.market_open:
            self._execute(o, qty, self.prices[sym])
        return 200, self.order_json(o)

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        for f in self.faults:
            if f.method == method and path.startswith(f.path) and (kinds is None or f.kind in kinds):
                f.times -= 1
                if f.times <= 0:
                    self.faults.remove(f)
                return f
        return None


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeAlpacaTrading
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        fake = self.server_state
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        reset = time.time() + (fake.ratelimit_reset_s if status == 429 else 60.0)
        self.send_header("X-Ratelimit-Limit", str(RATE_LIMIT))
        self.send_header("X-Ratelimit-Remaining", "0" if status == 429 else str(RATE_LIMIT - 1))
        self.send_header("X-Ratelimit-Reset", str(int(reset + 0.999)))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        fake = self.server_state
        parsed = urlparse(self.path)
        path, query = parsed.path, {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        body: dict[str, Any] | None = None
        if method == "POST":
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
        if (self.headers.get("APCA-API-KEY-ID"), self.headers.get("APCA-API-SECRET-KEY")) != (
            API_KEY,
            SECRET_KEY,
        ):
            self._send(401, {"code": 40110000, "message": "request is not authorized"})
            return
        with fake.lock:
            fake.requests.append((method, path, body))
            fault = fake._take_fault(method, path, kinds=("status", "accept_then_status", "hang"))
        if fault is not None and fault.kind == "status":
            self._send(fault.status, fault.body or {"code": fault.status * 100000, "message": "injected"})
            return
        if fault is not None and fault.kind == "hang" and not fault.accept:
            time.sleep(fault.seconds)
        with fake.lock:
            status, out = self._route(method, path, query, body)
        if fault is not None and fault.kind == "accept_then_status":
            self._send(fault.status, fault.body or {"message": "injected after accept"})
            return
        if fault is not None and fault.kind == "hang" and fault.accept:
            time.sleep(fault.seconds)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self._send(status, out)

    def _route(
        self, method: str, path: str, q: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        fake = self.server_state
        if method == "GET" and path == "/v2/account":
            return 200, fake.account_json()
        if method == "GET" and path == "/v2/positions":
            return 200, [fake.position_json(s, p) for s, p in sorted(fake.positions.items())]
        if method == "GET" and path == "/v2/clock":
            return 200, fake.clock_json()
        if method == "GET" and path == "/v2/calendar":
            return 200, fake.calendar_json(q.get("start"), q.get("end"))
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            for o in fake.orders.values():
                if o["client_order_id"] == q.get("client_order_id"):
                    return 200, fake.order_json(o)
            return 404, {"code": 40410000, "message": "order not found"}
        if method == "GET" and path == "/v2/orders":
            status = q.get("status", "open")
            rows = [
                o
                for o in fake.orders.values()
                if status == "all"
                or (status == "open" and fake.open_filter_broken)
                or (status == "open") == (o["status"] in _OPEN)
            ]
            for bound, keep in (("after", lambda t, b: t > b), ("until", lambda t, b: t < b)):
                if q.get(bound):
                    b = dt.datetime.fromisoformat(q[bound].replace("Z", "+00:00"))
                    rows = [o for o in rows if keep(o["created_at"], b)]
            rows.sort(key=lambda o: o["created_at"], reverse=q.get("direction", "desc") == "desc")
            limit = min(int(q.get("limit", 50)), fake.max_page)
            return 200, [fake.order_json(o) for o in rows[:limit]]
        if method == "GET" and path.startswith("/v2/orders/"):
            found = fake.orders.get(path.rsplit("/", 1)[1])
            if found is None:
                return 404, {"code": 40410000, "message": "order not found"}
            return 200, fake.order_json(found)
        if method == "DELETE" and path.startswith("/v2/orders/"):
            o = fake.orders.get(path.rsplit("/", 1)[1])  # type: ignore[assignment]
            if o is None:
                return 404, {"code": 40410000, "message": "order not found"}
            if o["status"] not in _OPEN:
                return 422, {"code": 42210000, "message": f"order is not cancelable (status {o['status']})"}
            o["status"], o["canceled_at"], o["updated_at"] = "canceled", fake._tick(), fake.now
            return 204, None
        if method == "POST" and path == "/v2/orders":
            assert body is not None
            return fake.submit(body)
        if method == "GET" and path == "/v2/account/activities":
            types = set(q.get("activity_types", "").split(",")) - {""}
            after = dt.datetime.fromisoformat(q["after"].replace("Z", "+00:00")) if q.get("after") else None
            return 200, [
                a
                for a in fake.cash_activities
                if (not types or a["activity_type"] in types)
                and (
                    after is None
                    or dt.datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")) > after
                )
            ]
        if method == "GET" and path == "/v2/corporate_actions/announcements":
            since, until = q.get("since", "0000"), q.get("until", "9999")
            types = set(q.get("ca_types", "").split(",")) - {""}
            return 200, [
                a
                for a in fake.announcements
                if since <= a["ex_date"] <= until
                and (not types or a["ca_type"] in types)
                and (not q.get("symbol") or a["initiating_symbol"] == q["symbol"])
            ]
        if method == "GET" and path == "/v2/account/activities/FILL":
            acts = list(fake.activities)
            if q.get("after"):
                after = dt.datetime.fromisoformat(q["after"].replace("Z", "+00:00"))
                acts = [
                    a
                    for a in acts
                    if dt.datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")) > after
                ]
            if q.get("direction", "desc") == "desc":
                acts.reverse()
            if q.get("page_token"):
                ids = [a["id"] for a in acts]
                acts = acts[ids.index(q["page_token"]) + 1 :] if q["page_token"] in ids else []
            return 200, acts[: int(q.get("page_size", 100))]
        return 404, {"code": 40400000, "message": f"not found: {method} {path}"}

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")
