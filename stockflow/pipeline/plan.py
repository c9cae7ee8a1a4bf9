"""From the target book's orders to a plan: risk decides each order, the mode routes it.

:func:`plan_orders` takes the orders of :func:`stockflow.portfolio.orders_for` (exits first, then
entries in rank order), lets the risk engine judge them (breaker, kill switch, stale data, order count
and every limit; a refusal is stored with its reason code), then routes each approved order by mode
(:func:`stockflow.pipeline.modes.route_order`). :func:`revalidate` checks approved orders again after
the wait for a person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from stockflow.brokers.ids import client_order_id
from stockflow.domain.orders import Order, OrderRequest, OrderType, Position, Side, TradingState
from stockflow.pipeline.approval import ProposedOrder
from stockflow.pipeline.modes import Route, Routed, check_mode, ignored, route_order
from stockflow.pipeline.session import SessionCheck
from stockflow.pipeline.signals import Action, Signal, SignalStatus
from stockflow.risk.limits import MarketContext, RiskDecision, check_orders
from stockflow.risk.pdt import DayTrades
from stockflow.risk.state import StateInfo
from stockflow.risk.stops import initial_stop

if TYPE_CHECKING:
    from stockflow.config import Settings
    from stockflow.portfolio import BookOrder, TargetBook


@dataclass(frozen=True)
class PlannedOrder:
    """An order the risk engine approved (possibly sized down), with what a person would be shown."""

    routed: Routed
    request: OrderRequest
    decision: RiskDecision
    proposed: ProposedOrder

    @property
    def symbol(self) -> str:
        """The order's symbol."""
        return self.request.symbol


@dataclass(frozen=True)
class Refusal:
    """An order not sent, and why."""

    symbol: str
    reason_code: str
    reason: str
    status: SignalStatus = SignalStatus.REJECTED


@dataclass(frozen=True)
class Plan:
    """The orders of one run: sent on their own (``auto``), waiting for a person (``approval``, in rank
    order), refused by risk (``refused``); ``decisions`` is every risk decision (stored with reason
    codes); ``routed`` is every signal with its route (ignored ones say why they have no order)."""

    auto: tuple[PlannedOrder, ...] = ()
    approval: tuple[PlannedOrder, ...] = ()
    refused: tuple[Refusal, ...] = ()
    decisions: tuple[RiskDecision, ...] = ()
    routed: tuple[Routed, ...] = field(default=(), repr=False)


def run_key(expected: dt.date) -> str:
    """The id that makes client order ids: stable per session, so a re-run of the same session can
    never send a second order for the same decision (the broker answers "already submitted")."""
    return f"trade-{expected.isoformat()}"


def _resting_stops_excluded(orders: Sequence[Order]) -> list[Order]:
    # A resting protective stop is cancelled by the exit that replaces it (execution cancels it), so it
    # must not count as a pending sell that leaves "nothing to exit".
    return [o for o in orders if o.type is not OrderType.STOP]


def _no_order_reason(sig: Signal, book: TargetBook) -> tuple[str, str]:
    line = next((ln for ln in book.lines if ln.symbol == sig.symbol), None)
    if line is not None and line.action == "keep":
        return "book:keep", f"kept: rank {sig.rank} within top {book.k} + hold buffer"
    if line is not None and line.action == "enter":
        return "book:no_room", f"in the top {book.k} at rank {sig.rank} but not entered: {line.note}"
    if sig.rank is None:
        return "book:unscored", "no score this session"
    return "book:outside", f"rank {sig.rank}: not in the top {book.k}"


def plan_orders(
    orders: Sequence[BookOrder],
    signals: Sequence[Signal],
    book: TargetBook,
    *,
    mode: str,
    settings: Settings,
    account: Any,
    positions: Sequence[Position],
    open_orders: Sequence[Order],
    state: StateInfo | TradingState,
    prices: Mapping[str, Decimal],
    session_check: SessionCheck,
    day_trades: DayTrades | None = None,
) -> Plan:
    """Judge the book's orders with the risk engine and route the approved ones by ``mode``
    (``day_trades``: the pattern-day-trader rule's count, see :mod:`stockflow.risk.pdt`)."""
    m = check_mode(mode)
    equity = float(account.equity)
    key = run_key(session_check.expected)
    by_symbol = {s.symbol: s for s in signals}
    refused: list[Refusal] = []
    candidates: list[OrderRequest] = []
    for o in orders:
        price = prices.get(o.symbol)
        if price is None or price <= 0:
            refused.append(
                Refusal(o.symbol, "risk:denied:no_price", f"{o.symbol}: no positive price to trade on")
            )
            continue
        side = Side.BUY if o.side == "buy" else Side.SELL
        sig = by_symbol.get(o.symbol)
        candidates.append(
            OrderRequest(
                client_order_id=client_order_id(key, session_check.expected, o.symbol, side, o.intent),
                symbol=o.symbol,
                side=side,
                qty=Decimal(round(o.qty)),
                type=OrderType.MARKET,
                reference_price=price,
                reason=(sig.explain() if sig is not None else f"{o.intent} {o.symbol}")[:500],
                intent=o.intent,
            )
        )
    decisions: list[RiskDecision] = []
    if candidates:
        market = MarketContext(
            expected_session=session_check.expected,
            latest_sessions=session_check.latest,
            prices=dict(prices),
            open_orders=_resting_stops_excluded(open_orders),
            day_trades=day_trades,
        )
        decisions = check_orders(candidates, account, list(positions), state, settings.risk, market)
    auto: list[PlannedOrder] = []
    approval: list[PlannedOrder] = []
    routed: dict[str, Routed] = {}
    for req, d in zip(candidates, decisions, strict=True):
        sig = by_symbol.get(req.symbol) or _bare_signal(req, session_check.expected)
        if d.approved is None:
            refused.append(Refusal(req.symbol, f"risk:{d.reason_code}", d.detail or d.reason_code))
            routed[req.symbol] = ignored(sig, f"risk:{d.reason_code}", d.detail or d.reason_code)
            continue
        notional = float(d.approved.qty * (d.approved.reference_price or 0))
        r = route_order(sig, notional, m, settings.portfolio)
        routed[req.symbol] = r
        planned = PlannedOrder(r, d.approved, d, propose(r, d.approved, d, equity, settings))
        (approval if r.route is Route.APPROVAL else auto).append(planned)
    for sig in signals:
        if sig.symbol not in routed:
            routed[sig.symbol] = ignored(sig, *_no_order_reason(sig, book))
    approval.sort(key=lambda p: (p.routed.signal.rank is None, p.routed.signal.rank or 0, p.symbol))
    return Plan(
        auto=tuple(auto),
        approval=tuple(approval),
        refused=tuple(refused),
        decisions=tuple(decisions),
        routed=tuple(routed[s.symbol] for s in signals if s.symbol in routed),
    )


def _bare_signal(req: OrderRequest, session: dt.date) -> Signal:
    # An order without a signal cannot come from the book; kept total for safety.
    return Signal(req.symbol, session, Action.SELL if req.side is Side.SELL else Action.BUY, 0.5, 0.5, "")


def propose(
    routed: Routed, req: OrderRequest, decision: RiskDecision, equity: float, settings: Settings
) -> ProposedOrder:
    """What a person is shown for one order: rank, score, expected excess, P(outperform), price, stop,
    risk taken and reason."""
    price = float(req.reference_price or 0)
    qty = float(req.qty)
    if req.intent == "exit":
        stop, risk = None, 0.0
    else:
        stop = round(initial_stop(price, settings.risk.stop_loss), 4)
        risk = qty * (price - stop)
    why = routed.reason
    if decision.action == "sized_down":
        why += f"; sized down by risk ({decision.rule}: {decision.detail})"
    drivers = ", ".join(d.describe() for d in routed.signal.drivers)
    if drivers:
        method = routed.signal.drivers[0].method or "feature z-scores"
        why += f"; drivers ({method}): {drivers}"
    return ProposedOrder(
        symbol=req.symbol,
        side=req.side.value,
        qty=qty,
        reference_price=price,
        stop_price=stop,
        confidence=routed.signal.confidence,
        probability=routed.signal.probability,
        rank=routed.signal.rank,
        score=routed.signal.score,
        expected_excess=routed.signal.expected_excess,
        risk_amount=round(risk, 2),
        risk_pct=risk / equity if equity > 0 else 0.0,
        notional=round(qty * price, 2),
        reason=why,
        client_order_id=req.client_order_id,
        intent=req.intent,
    )


def revalidate(
    approved: Sequence[PlannedOrder],
    *,
    settings: Settings,
    account: Any,
    positions: Sequence[Position],
    open_orders: Sequence[Order],
    state: StateInfo,
    prices_now: Mapping[str, Decimal],
    clock_session_then: dt.date | None,
    clock_session_now: dt.date | None,
    session_check: SessionCheck,
    orders_sent: int,
) -> tuple[list[PlannedOrder], list[Refusal]]:
    """Check approved orders again after the wait: trading state, market session, price moves and every
    risk limit with the account as it is now. An order that would now be denied or sized down is not
    sent (a person approved exactly what was shown, nothing else)."""
    ok: list[PlannedOrder] = []
    refused: list[Refusal] = []
    if clock_session_then != clock_session_now:
        why = (
            f"the market session changed while waiting for approval ({clock_session_then} -> "
            f"{clock_session_now}); the plan's prices are from another session"
        )
        return [], [Refusal(p.symbol, "revalidate:session_changed", why) for p in approved]
    candidates: list[PlannedOrder] = []
    for p in approved:
        if state.state is TradingState.HALTED:
            refused.append(
                Refusal(p.symbol, "revalidate:halted", f"trading state is HALTED ({state.reason})")
            )
            continue
        if state.state is TradingState.REDUCING and p.request.intent != "exit":
            refused.append(Refusal(p.symbol, "revalidate:reducing", "trading state is REDUCING: exits only"))
            continue
        ref = p.request.reference_price
        now = prices_now.get(p.symbol)
        if ref is None or now is None or now <= 0:
            refused.append(Refusal(p.symbol, "revalidate:no_price", f"{p.symbol}: no current price"))
            continue
        move = abs(float(now / ref) - 1.0)
        if move > settings.trading.max_price_move:
            refused.append(
                Refusal(
                    p.symbol,
                    "revalidate:price_moved",
                    f"{p.symbol}: price {now} vs {ref} shown "
                    f"({move:.2%} > {settings.trading.max_price_move:.2%})",
                )
            )
            continue
        candidates.append(p)
    if not candidates:
        return ok, refused
    market = MarketContext(
        expected_session=session_check.expected,
        latest_sessions=session_check.latest,
        prices=dict(prices_now),
        open_orders=_resting_stops_excluded(open_orders),
        orders_sent_this_run=orders_sent,
    )
    decisions = check_orders(
        [p.request for p in candidates], account, list(positions), state, settings.risk, market
    )
    for p, d in zip(candidates, decisions, strict=True):
        if d.approved is None or d.approved.qty != p.request.qty:
            refused.append(
                Refusal(
                    p.symbol, f"revalidate:{d.reason_code}"[:64], f"limits changed while waiting: {d.detail}"
                )
            )
        else:
            ok.append(p)
    return ok, refused
