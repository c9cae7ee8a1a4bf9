"""The risk engine: every proposed order is approved, sized down or denied by one rule, with a reason
code (``approved``, ``sized_down:<rule>``, ``denied:<rule>``) that is stored with the decision.

Rules, in the order they apply:

- ``halted`` (state HALTED: nothing new), ``reducing`` (state REDUCING: exits only);
- ``max_orders_per_run``;
- ``pdt`` (equity under ``pdt_min_equity`` and the order would be a 4th day trade in 5 business days:
  ``market.day_trades``, see :mod:`stockflow.risk.pdt`);
- ``no_price`` (no positive price to judge the order by);
- exits: ``no_position`` (nothing to sell), ``position_qty`` (sized down to what is held);
- entries: ``short_not_allowed``, ``stale_data`` (latest bar is not the expected session),
  ``max_open_positions``, ``risk_per_trade`` (fixed-fractional: loss at the stop within budget),
  ``max_position_weight``, ``max_total_exposure``, ``buying_power`` (never above cash or buying
  power, open buy orders included), ``min_notional``.

Exits are judged before entries so that they free up capacity; entries are judged in the order given
(the caller sorts them, e.g. by confidence).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from stockflow.config.sections import RiskSettings
from stockflow.domain.orders import (
    ZERO,
    Account,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Side,
    TradingState,
    to_decimal,
)
from stockflow.risk.pdt import DayTrades
from stockflow.risk.state import StateInfo

Action = Literal["approved", "sized_down", "denied"]


class RiskDecision(BaseModel):
    """The risk engine's verdict on one proposed order."""

    model_config = ConfigDict(frozen=True)

    request: OrderRequest  # as proposed
    approved: OrderRequest | None  # what may be sent (None when denied)
    action: Action
    rule: str | None  # the rule that sized it down or denied it
    reason_code: str  # approved / sized_down:<rule> / denied:<rule>
    detail: str = ""

    @property
    def approved_qty(self) -> Decimal:
        """Quantity that may be sent (0 when denied)."""
        return self.approved.qty if self.approved is not None else ZERO


@dataclass(frozen=True)
class MarketContext:
    """What the risk engine knows about the market for this run.

    ``latest_sessions``: the latest (non-quarantined) bar session per symbol; ``prices``: the last close
    per symbol (used when a request has no price of its own, and to value positions);
    ``open_orders``: orders already working at the broker (their buys use exposure and buying power);
    ``orders_sent_this_run``: orders this run already sent (counted against ``max_orders_per_run``);
    ``day_trades``: the day trades of the window ending on the date the orders will fill (PDT rule).
    """

    expected_session: dt.date
    latest_sessions: Mapping[str, dt.date] = field(default_factory=dict)
    prices: Mapping[str, Decimal | float] = field(default_factory=dict)
    open_orders: Sequence[Order] = ()
    orders_sent_this_run: int = 0
    day_trades: DayTrades | None = None  # None: not known, the PDT rule is not applied


def _floor_qty(budget: Decimal, unit: Decimal) -> Decimal:
    """Largest whole n >= 0 with n * unit <= budget (exact)."""
    if unit <= 0 or budget <= 0:
        return ZERO
    n = (budget / unit).to_integral_value(rounding=ROUND_FLOOR)
    while n > 0 and n * unit > budget:  # a 28-digit quotient can round up
        n -= 1
    return max(n, ZERO)


def _price(req: OrderRequest, market: MarketContext) -> Decimal | None:
    p = req.price_for_risk
    if p is None and req.symbol in market.prices:
        p = to_decimal(market.prices[req.symbol])
    return p if p is not None and p > 0 else None


def _mark(pos: Position, market: MarketContext) -> Decimal:
    if pos.symbol in market.prices:
        return to_decimal(market.prices[pos.symbol])
    return pos.current_price if pos.current_price is not None else pos.avg_entry_price


def _decide(req: OrderRequest, qty: Decimal, rule: str | None, detail: str) -> RiskDecision:
    if qty <= 0:
        return RiskDecision(
            request=req,
            approved=None,
            action="denied",
            rule=rule,
            reason_code=f"denied:{rule}",
            detail=detail,
        )
    if qty < req.qty:
        return RiskDecision(
            request=req,
            approved=req.with_qty(qty),
            action="sized_down",
            rule=rule,
            reason_code=f"sized_down:{rule}",
            detail=detail,
        )
    return RiskDecision(
        request=req, approved=req, action="approved", rule=None, reason_code="approved", detail=detail
    )


def _deny(req: OrderRequest, rule: str, detail: str) -> RiskDecision:
    return _decide(req, ZERO, rule, detail)


def check_orders(  # noqa: PLR0917 (the documented contract)
    proposed: Sequence[OrderRequest],
    account: Account,
    positions: Sequence[Position],
    state: TradingState | StateInfo,
    settings: RiskSettings,
    market: MarketContext,
) -> list[RiskDecision]:
    """Judge every proposed order; returns one :class:`RiskDecision` per request, in the given order."""
    trading_state = state.state if isinstance(state, StateInfo) else TradingState(state)
    equity = account.equity
    held: dict[str, Decimal] = {p.symbol: p.qty for p in positions if p.qty != 0}
    value: dict[str, Decimal] = {p.symbol: abs(p.qty * _mark(p, market)) for p in positions if p.qty != 0}
    pending_sell: dict[str, Decimal] = {}
    pending_buy_value = ZERO
    for o in market.open_orders:
        if not o.is_open:
            continue
        if o.side is Side.SELL:
            if o.type is not OrderType.STOP:  # a resting protective stop is cancelled by an exit
                pending_sell[o.symbol] = pending_sell.get(o.symbol, ZERO) + o.remaining_qty
        else:
            p = (
                o.limit_price
                or o.stop_price
                or (to_decimal(market.prices[o.symbol]) if o.symbol in market.prices else None)
            )
            if p is not None:
                pending_buy_value += o.remaining_qty * p
                value[o.symbol] = value.get(o.symbol, ZERO) + o.remaining_qty * p
    exposure = sum(value.values(), ZERO)
    spendable = min(account.cash, account.buying_power) - pending_buy_value
    sent = market.orders_sent_this_run
    symbols_open = {s for s, q in held.items() if q != 0} | {
        o.symbol for o in market.open_orders if o.is_open and o.side is Side.BUY
    }

    pdt = market.day_trades
    results: dict[int, RiskDecision] = {}
    order = sorted(range(len(proposed)), key=lambda i: 0 if proposed[i].intent == "exit" else 1)
    for i in order:
        req = proposed[i]
        if trading_state is TradingState.HALTED:
            results[i] = _deny(req, "halted", "trading state is HALTED: no new orders")
            continue
        if trading_state is TradingState.REDUCING and req.intent != "exit":
            results[i] = _deny(req, "reducing", "trading state is REDUCING: exits only")
            continue
        if sent >= settings.max_orders_per_run:
            results[i] = _deny(
                req,
                "max_orders_per_run",
                f"{sent} orders already this run (max {settings.max_orders_per_run})",
            )
            continue
        if pdt is not None:
            why = pdt.refusal(req.symbol, req.side, equity, to_decimal(settings.pdt_min_equity))
            if why is not None:
                results[i] = _deny(req, "pdt", why)
                continue
        price = _price(req, market)
        if price is None:
            results[i] = _deny(req, "no_price", f"{req.symbol}: no positive price to judge the order by")
            continue

        if req.intent == "exit":
            have = held.get(req.symbol, ZERO)
            closing_side = Side.SELL if have > 0 else Side.BUY
            available = abs(have) - (pending_sell.get(req.symbol, ZERO) if have > 0 else ZERO)
            if have == 0 or req.side is not closing_side or available <= 0:
                results[i] = _deny(
                    req,
                    "no_position",
                    f"{req.symbol}: holding {have}, nothing to "
                    f"{req.side.value} (pending sells {pending_sell.get(req.symbol, ZERO)})",
                )
                continue
            qty = min(req.qty, available)
            d = _decide(
                req,
                qty,
                "position_qty" if qty < req.qty else None,
                f"{req.symbol}: exit {qty} of {abs(have)} held",
            )
            results[i] = d
            pdt = pdt.after(req.symbol, req.side) if pdt is not None else None
            held[req.symbol] = have - qty if have > 0 else have + qty
            pending_sell[req.symbol] = pending_sell.get(req.symbol, ZERO) + (qty if have > 0 else ZERO)
            sent += 1
            continue

        # Entries.
        if req.side is Side.SELL:
            results[i] = _deny(req, "short_not_allowed", f"{req.symbol}: short entries are not supported")
            continue
        latest = market.latest_sessions.get(req.symbol)
        if latest != market.expected_session:
            results[i] = _deny(
                req, "stale_data", f"{req.symbol}: latest bar {latest}, expected {market.expected_session}"
            )
            continue
        if req.symbol not in symbols_open and len(symbols_open) >= settings.max_open_positions:
            results[i] = _deny(
                req,
                "max_open_positions",
                f"{len(symbols_open)} positions open or pending (max {settings.max_open_positions})",
            )
            continue
        if equity <= 0:
            results[i] = _deny(req, "risk_per_trade", f"equity {equity} is not positive")
            continue
        stop = price * (1 - to_decimal(settings.stop_loss))  # the initial protective stop
        risk_budget = to_decimal(settings.risk_per_trade) * equity
        caps: list[tuple[str, Decimal, str]] = [
            (
                "risk_per_trade",
                _floor_qty(risk_budget, price - stop),
                f"loss at stop {stop:.4f} <= {risk_budget:.2f} ({settings.risk_per_trade:.2%} of equity)",
            ),
            (
                "max_position_weight",
                _floor_qty(
                    to_decimal(settings.max_position_weight) * equity - value.get(req.symbol, ZERO), price
                ),
                f"position <= {settings.max_position_weight:.2%} of equity {equity:.2f}",
            ),
            (
                "max_total_exposure",
                _floor_qty(to_decimal(settings.max_total_exposure) * equity - exposure, price),
                f"exposure {exposure:.2f} + order <= {settings.max_total_exposure:.2%} of equity",
            ),
            ("buying_power", _floor_qty(spendable, price), f"cost <= spendable cash {spendable:.2f}"),
        ]
        requested = req.qty.to_integral_value(rounding=ROUND_FLOOR)
        qty, rule, why = requested, None, f"{req.symbol}: {requested} x {price}"
        for name, cap, text in caps:
            if cap < qty:
                qty, rule, why = cap, name, f"{req.symbol}: {name}: {cap} shares max ({text})"
        if qty < req.qty and rule is None:
            rule, why = "whole_shares", f"{req.symbol}: whole shares only"
        if qty > 0 and qty * price < to_decimal(settings.min_order_notional):
            results[i] = _deny(
                req,
                "min_notional",
                f"{req.symbol}: notional {qty * price:.2f} below {settings.min_order_notional:.2f}",
            )
            continue
        d = _decide(req, qty, rule, why)
        results[i] = d
        if d.approved is not None:
            pdt = pdt.after(req.symbol, req.side) if pdt is not None else None
            cost = qty * price
            value[req.symbol] = value.get(req.symbol, ZERO) + cost
            exposure += cost
            spendable -= cost
            symbols_open.add(req.symbol)
            sent += 1
    return [results[i] for i in range(len(proposed))]
