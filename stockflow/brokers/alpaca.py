"""Alpaca adapter over alpaca-py's ``TradingClient``.

- Endpoint: paper by default; live only with ``broker.alpaca_paper=false`` AND
  ``broker.live_trading_confirmed=true`` (validated in the settings); ``alpaca_url_override`` for tests.
- Timeouts: alpaca-py sets none; we mount a ``requests`` adapter on the client's session that gives
  every request ``broker.http_timeout_s``.
- Retries: alpaca-py would retry 429/504 itself (3 x 3 s, hiding a 504 after an accepted POST). We turn
  that off and map answers to our taxonomy, so the execution layer decides, always resending the SAME
  client_order_id: 429 -> ``RetryableError``; 5xx or a read timeout on a POST -> ``OutcomeUnknownError``;
  422 code 40010001 "client_order_id must be unique" -> ``DuplicateClientOrderIdError``; 403 (buying
  power, qty available) and other 4xx -> ``RejectedError``.
- Before submitting: market clock and calendar (a DAY order placed while closed waits for the next open,
  which must be the next session of the calendar and not too far away), whole shares and minimum notional.
- Keys come from the one resolver the data source uses too (:mod:`stockflow.config.credentials`:
  ``STOCKFLOW_BROKER__ALPACA_*``, ``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY``, or a Prefect Secret
  block holding ``key:secret``); they are never logged or put into messages.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stockflow.brokers.alpaca_http import (
    Http4xx,
    call_alpaca,
    make_trading_client,
)
from stockflow.brokers.alpaca_status import map_status
from stockflow.brokers.base import DuplicateClientOrderIdError, MarketClock
from stockflow.config.sections import BrokerSettings
from stockflow.domain.corporate import CorporateAction
from stockflow.domain.orders import (
    ZERO,
    Account,
    Fill,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TimeInForce,
    to_decimal,
)
from stockflow.errors import ConfigError, RejectedError, RetryableError
from stockflow.execution._log import trading_logger

#: Alpaca's code for a malformed/invalid request; with "client_order_id" in the message it means reuse.
DUPLICATE_CODE = 40010001
#: Smallest order value we send (Alpaca's minimum for fractional/notional orders is $1).
MIN_NOTIONAL = Decimal(1)
#: A DAY order placed while the market is closed waits for the next open; refuse when that is further.
MAX_QUEUE = dt.timedelta(days=4)
#: Reads answered 429 are retried this often, waiting until the limit resets (capped).
READ_RETRIES = 3
MAX_RATE_WAIT_S = 10.0
#: Alpaca's largest page of orders.
PAGE = 500


def _dec(v: Any) -> Decimal | None:
    return None if v is None or v == "" else to_decimal(str(v))


def _enum_value(v: Any) -> str:
    return str(getattr(v, "value", v))


def round_price(price: Decimal) -> Decimal:
    """Alpaca accepts 2 decimals at or above $1 and 4 below."""
    step = Decimal("0.01") if price >= 1 else Decimal("0.0001")
    return price.quantize(step, rounding=ROUND_HALF_UP)


class AlpacaBroker:
    """The ``Broker`` protocol over Alpaca (paper or live)."""

    supports_stop_orders = True

    def __init__(self, settings: BrokerSettings, *, client: Any | None = None) -> None:
        if not settings.alpaca_paper and not settings.live_trading_confirmed:
            # The settings validator refuses this already; settings built without validation must not slip by.
            raise ConfigError(
                "live trading needs broker.live_trading_confirmed=true as well as alpaca_paper=false"
            )
        self.settings = settings
        self.name = "alpaca-paper" if settings.alpaca_paper else "alpaca-live"
        self.client = client if client is not None else make_trading_client(settings)
        self.log = trading_logger("stockflow.brokers.alpaca")
        self._clock_cache: tuple[float, MarketClock] | None = None

    # -- error mapping --------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, write: bool = False) -> Any:
        return call_alpaca(what, fn, *args, write=write, timeout_s=self.settings.http_timeout_s)

    # -- mapping --------------------------------------------------------------------------------
    @staticmethod
    def _order(o: Any) -> Order:
        filled = _dec(o.filled_qty) or ZERO
        mapped = map_status(_enum_value(o.status), filled)  # one table: brokers/alpaca_status.py
        tif = _enum_value(o.time_in_force)
        return Order(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=Side(_enum_value(o.side)),
            qty=_dec(o.qty) or ZERO,
            type=OrderType(_enum_value(o.order_type or o.type)),
            status=mapped,
            broker_order_id=str(o.id),
            filled_qty=filled,
            avg_fill_price=_dec(o.filled_avg_price),
            limit_price=_dec(o.limit_price),
            stop_price=_dec(o.stop_price),
            time_in_force=TimeInForce(tif) if tif in ("day", "gtc") else TimeInForce.DAY,
            submitted_at=o.submitted_at,
            updated_at=o.updated_at,
        )

    # -- Broker protocol ------------------------------------------------------------------------
    def account(self) -> Account:
        """Cash, equity and buying power (non-marginable, so margin is never used)."""
        a = self._checked("account", self.client.get_account)
        bp = _dec(a.non_marginable_buying_power) or _dec(a.buying_power) or ZERO
        return Account(
            cash=_dec(a.cash) or ZERO,
            equity=_dec(a.equity) or ZERO,
            buying_power=bp,
            currency=a.currency or "USD",
            status=_enum_value(a.status),
            trading_blocked=bool(a.trading_blocked or a.account_blocked),
            last_equity=_dec(a.last_equity),
        )

    def positions(self) -> list[Position]:
        """Every open position."""
        rows = self._checked("positions", self.client.get_all_positions)
        out = []
        for p in rows:
            qty = to_decimal(p.qty)
            if _enum_value(p.side) == "short" and qty > 0:
                qty = -qty
            out.append(
                Position(
                    symbol=p.symbol,
                    qty=qty,
                    avg_entry_price=to_decimal(p.avg_entry_price),
                    current_price=_dec(p.current_price),
                )
            )
        return out

    def open_orders(self) -> list[Order]:
        """Working orders, every page (Alpaca answers at most 500 at a time, oldest first here), each
        checked against our status table rather than trusting the server's ``status=open`` filter."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        seen: dict[str, Order] = {}
        after: dt.datetime | None = None
        while True:
            req = GetOrdersRequest(
                status=QueryOrderStatus.OPEN, limit=PAGE, direction="asc", after=after, nested=False
            )
            page = self._checked("open orders", self.client.get_orders, req) or []
            for raw in page:
                o = self._order(raw)
                if o.is_open and o.broker_order_id is not None:
                    seen[o.broker_order_id] = o
            if len(page) < PAGE:
                break
            newest = max(raw.submitted_at or raw.created_at for raw in page)
            if after is not None and newest <= after:
                break  # the page did not move forward: never loop forever
            # Orders created in the same instant as the page's last one are asked for again.
            after = newest - dt.timedelta(microseconds=1)
        return list(seen.values())

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client id, or None (404)."""
        try:
            return self._order(self._call("get order", self.client.get_order_by_client_id, client_order_id))
        except Http4xx as err:
            if err.status == 404:
                return None
            raise err.as_rejected("get order") from None

    def get_order(self, broker_order_id: str) -> Order | None:
        """The order with this Alpaca id, or None (404, or an id that is not a UUID and so cannot be
        Alpaca's: alpaca-py raises ValueError for it before asking)."""
        try:
            uuid.UUID(str(broker_order_id))
        except ValueError:
            self.log.warning("not an Alpaca order id (expected a UUID): %r", broker_order_id)
            return None
        try:
            return self._order(self._call("get order", self.client.get_order_by_id, broker_order_id))
        except Http4xx as err:
            if err.status == 404:
                return None
            raise err.as_rejected("get order") from None

    def cancel(self, broker_order_id: str) -> None:
        """Request cancellation; an order that is already final (422) is left as it is."""
        try:
            self._call("cancel", self.client.cancel_order_by_id, broker_order_id)
        except Http4xx as err:
            if err.status == 422:
                return
            raise err.as_rejected(f"cancel {broker_order_id}") from None

    def clock(self) -> MarketClock:
        """Alpaca's market clock plus the session from its calendar."""
        from alpaca.trading.requests import GetCalendarRequest

        c = self._checked("clock", self.client.get_clock)
        today = c.timestamp.date()
        cal = self._checked(
            "calendar",
            self.client.get_calendar,
            GetCalendarRequest(start=today - dt.timedelta(days=10), end=today + dt.timedelta(days=10)),
        )
        days = sorted(x.date for x in cal)
        past = [d for d in days if d <= today]
        clock = MarketClock(
            timestamp=c.timestamp,
            is_open=bool(c.is_open),
            next_open=c.next_open,
            next_close=c.next_close,
            session=past[-1] if past else None,
        )
        if clock.next_open is not None and not clock.is_open:
            upcoming = [d for d in days if d > today or (d == today and clock.next_open.date() == today)]
            if upcoming and clock.next_open.date() not in days:
                raise RejectedError(
                    f"alpaca clock and calendar disagree: next open {clock.next_open} is not a calendar day"
                )
        return clock

    def check_market(self, request: OrderRequest) -> MarketClock:
        """Refuse an order the market cannot take soon: closed and the next open too far away."""
        now = time.monotonic()
        if self._clock_cache is None or now - self._clock_cache[0] > 30:
            self._clock_cache = (now, self.clock())
        clock = self._clock_cache[1]
        if (
            not clock.is_open
            and clock.next_open is not None
            and clock.next_open - clock.timestamp > MAX_QUEUE
        ):
            raise RejectedError(
                f"market closed until {clock.next_open:%Y-%m-%d %H:%M} UTC; not queuing {request.symbol}"
            )
        return clock

    def submit(self, request: OrderRequest) -> Order:
        """Send the order under its client_order_id (see the module docstring for the error mapping)."""
        from alpaca.trading.enums import OrderSide
        from alpaca.trading.enums import TimeInForce as ATif
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, StopOrderRequest

        if request.qty != request.qty.to_integral_value():
            raise RejectedError(f"{request.symbol}: whole shares only (got {request.qty})")
        price = request.price_for_risk
        if price is not None and request.qty * price < MIN_NOTIONAL:
            raise RejectedError(f"{request.symbol}: order value {request.qty * price} below ${MIN_NOTIONAL}")
        account = self.account()
        if account.trading_blocked:
            raise RejectedError(f"alpaca account is blocked from trading (status {account.status})")
        self.check_market(request)
        common: dict[str, Any] = {
            "symbol": request.symbol,
            "qty": float(request.qty),
            "client_order_id": request.client_order_id,
            "side": OrderSide.BUY if request.side is Side.BUY else OrderSide.SELL,
            "time_in_force": ATif.GTC if request.time_in_force is TimeInForce.GTC else ATif.DAY,
        }
        if request.type is OrderType.MARKET:
            req: Any = MarketOrderRequest(**common)
        elif request.type is OrderType.LIMIT:
            assert request.limit_price is not None
            req = LimitOrderRequest(**common, limit_price=float(round_price(request.limit_price)))
        else:
            assert request.stop_price is not None
            req = StopOrderRequest(**common, stop_price=float(round_price(request.stop_price)))
        try:
            return self._order(self._call("submit", self.client.submit_order, req, write=True))
        except Http4xx as err:
            if err.status == 422 and err.code == DUPLICATE_CODE and "client_order_id" in err.message:
                raise DuplicateClientOrderIdError(request.client_order_id) from None
            raise err.as_rejected(f"submit {request.side.value} {request.qty} {request.symbol}") from None

    def fills(self, since: dt.datetime | None = None) -> list[Fill]:
        """FILL account activities at or after ``since``, oldest first (paginated)."""
        out: list[Fill] = []
        params: dict[str, Any] = {"direction": "asc", "page_size": 100}
        if since is not None:
            params["after"] = (since - dt.timedelta(seconds=1)).astimezone(dt.UTC).isoformat()
        while True:
            page = self._checked("fills", self.client.get, "/account/activities/FILL", dict(params)) or []
            for a in page:
                ts = dt.datetime.fromisoformat(str(a["transaction_time"]).replace("Z", "+00:00"))
                if since is not None and ts < since:
                    continue
                side = Side.BUY if a["side"] == "buy" else Side.SELL
                out.append(
                    Fill(
                        execution_id=a["id"],
                        broker_order_id=a["order_id"],
                        symbol=a["symbol"],
                        side=side,
                        qty=to_decimal(a["qty"]),
                        price=to_decimal(a["price"]),
                        timestamp=ts,
                    )
                )
            if len(page) < params["page_size"]:
                break
            params["page_token"] = page[-1]["id"]
        return out

    def cash_flows(self, since: dt.datetime) -> Decimal:
        """Deposits minus withdrawals (CSD/CSW activities) at or after ``since``: money moved, not P&L."""
        params = {
            "activity_types": "CSD,CSW",
            "after": since.astimezone(dt.UTC).isoformat(),
            "page_size": 100,
        }
        rows = self._checked("cash activities", self.client.get, "/account/activities", params) or []
        total = ZERO
        for a in rows:
            amount = to_decimal(a.get("net_amount") or 0)
            total += abs(amount) if a.get("activity_type") == "CSD" else -abs(amount)
        return total

    def corporate_actions(self, since: dt.date, until: dt.date) -> list[CorporateAction]:
        """Splits and cash dividends with an ex-date in [since, until] (Alpaca's announcements; at
        most 90 days per request)."""
        out: list[CorporateAction] = []
        start = since
        while start <= until:
            end = min(until, start + dt.timedelta(days=89))
            params = {"ca_types": "split,dividend", "since": start.isoformat(), "until": end.isoformat()}
            rows = self._checked(
                "corporate actions", self.client.get, "/corporate_actions/announcements", params
            )
            for a in rows or []:
                out.extend(_corporate_action(a))
            start = end + dt.timedelta(days=1)
        return sorted(out, key=lambda c: (c.ex_date, c.symbol, c.action_id))

    def _checked(self, what: str, fn: Any, *args: Any) -> Any:
        """A read, retried while rate limited (waiting for ``X-Ratelimit-Reset``, at most 3 times)."""
        for attempt in range(READ_RETRIES + 1):
            try:
                return self._call(what, fn, *args)
            except Http4xx as err:
                raise err.as_rejected(what) from None
            except RetryableError as err:
                if err.retry_after is None or attempt == READ_RETRIES:
                    raise
                time.sleep(min(err.retry_after, MAX_RATE_WAIT_S))
        raise AssertionError("unreachable")


def _corporate_action(a: dict[str, Any]) -> list[CorporateAction]:
    ex = a.get("ex_date")
    if not ex:
        return []
    kind = a.get("ca_type")
    common = {"action_id": str(a.get("id") or a["corporate_action_id"]), "ex_date": dt.date.fromisoformat(ex)}
    symbol = a.get("target_symbol") or a["initiating_symbol"]
    if kind == "split":
        ratio = to_decimal(a["new_rate"]) / to_decimal(a["old_rate"])
        return [CorporateAction(symbol=symbol, kind="split", ratio=ratio, **common)]
    if kind == "dividend" and to_decimal(a.get("cash") or 0) > 0:
        return [
            CorporateAction(symbol=symbol, kind="dividend", cash_per_share=to_decimal(a["cash"]), **common)
        ]
    return []
