"""From a session's scores to a sized target book and the orders that reach it (exits first).

One rule for the live ``trade`` run and the backtester's ML strategy (so what is backtested is what is
traded):

1. :func:`~stockflow.portfolio.topk.select_topk` picks the names: the top ``k`` by score, holdings kept
   within ``k + hold_buffer``, at most ``max_changes`` replacements per session. ``k`` is
   ``portfolio.top_k`` capped by ``risk.max_open_positions``.
2. :func:`size_entries` sizes each entering name in rank order with the shared fixed-fractional rule
   (:func:`stockflow.risk.sizing.position_size`: loss at the stop within ``risk.risk_per_trade`` of
   equity) under a per-name cap of ``min(risk.max_position_weight, risk.max_total_exposure / k)`` of
   equity, the cash, the exposure room and the free position slots, skipping what is below
   ``risk.min_order_notional``. Positions being exited still count against the room and the slots
   until their sells fill (the risk engine's rule), so at full capacity a replacement enters the session
   after its leaver has left. Kept names are not resized.
3. :func:`orders_for` is the difference between the target and the book: exits (worst rank first), then
   entries (best rank first).

The risk engine (``stockflow.risk.limits.check_orders``: breaker, kill switch, stale data, order count,
every limit again) still judges each order before it is sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stockflow.portfolio.topk import TopkSelection, select_topk
from stockflow.risk.sizing import position_size
from stockflow.risk.stops import initial_stop

if TYPE_CHECKING:
    from stockflow.config import Settings

#: The one meaning of "confidence" in stockflow (trade run, ``stockflow predict``, model card).
CONFIDENCE_DEFINITION = (
    "confidence = the model's calibrated probability that the stock outperforms the universe over the "
    "label horizon (P(outperform)); 0.5 is no edge"
)


@dataclass(frozen=True, slots=True)
class BookRules:
    """The construction and risk parameters of the book (from ``portfolio`` and ``risk`` settings)."""

    top_k: int
    hold_buffer: int
    max_changes: int | None
    max_open_positions: int
    risk_per_trade: float
    stop_loss: float
    max_position_weight: float
    max_total_exposure: float
    min_order_notional: float

    @classmethod
    def from_settings(cls, settings: Settings) -> BookRules:
        """Rules from ``settings.portfolio`` and ``settings.risk``."""
        p, r = settings.portfolio, settings.risk
        return cls(
            top_k=p.top_k,
            hold_buffer=p.hold_buffer,
            max_changes=p.max_changes,
            max_open_positions=r.max_open_positions,
            risk_per_trade=r.risk_per_trade,
            stop_loss=r.stop_loss,
            max_position_weight=r.max_position_weight,
            max_total_exposure=r.max_total_exposure,
            min_order_notional=r.min_order_notional,
        )

    @property
    def k(self) -> int:
        """Names in the target book: ``top_k`` capped by ``max_open_positions``."""
        return min(self.top_k, self.max_open_positions)

    @property
    def weight_cap(self) -> float:
        """The most one name may weigh: ``min(max_position_weight, max_total_exposure / k)``."""
        # Rounded so that 0.3 / 3 is 0.1, not 0.09999999999999999 (one share less at round prices).
        return min(self.max_position_weight, round(self.max_total_exposure / self.k, 12))


@dataclass(frozen=True, slots=True)
class Score:
    """A model's view of one symbol for one session (from ``stockflow.ml.predict.Prediction``)."""

    score: float
    prob_outperform: float
    expected_excess: float


@dataclass(frozen=True, slots=True)
class Line:
    """One name of the target book, or one leaving it."""

    symbol: str
    action: Literal["enter", "keep", "exit"]
    rank: int | None  # None: not scored this session
    score: float | None
    prob_outperform: float | None
    expected_excess: float | None
    price: float | None
    held_qty: float  # before this session's orders
    target_qty: float  # after them (0 for an exit; 0 for an entry that no room was left for)
    note: str = ""  # why an entering name got no shares


@dataclass(frozen=True, slots=True)
class TargetBook:
    """The session's target: entering, kept and leaving names with their target quantities."""

    selection: TopkSelection
    lines: tuple[Line, ...]  # entries and keeps in rank order, then exits worst first
    k: int

    def of(self, action: str) -> tuple[Line, ...]:
        """The lines with ``action`` (enter / keep / exit)."""
        return tuple(ln for ln in self.lines if ln.action == action)

    @property
    def unfilled(self) -> tuple[Line, ...]:
        """Entering names the risk rules left no room for this session."""
        return tuple(ln for ln in self.lines if ln.action == "enter" and ln.target_qty <= 0)


@dataclass(frozen=True, slots=True)
class BookOrder:
    """One order of the difference between target and book."""

    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    intent: Literal["entry", "exit"]
    price: float
    rank: int | None
    score: float | None
    prob_outperform: float | None
    expected_excess: float | None

    @property
    def notional(self) -> float:
        """qty x reference price."""
        return self.qty * self.price


def size_entries(
    prices: Sequence[float],
    *,
    equity: float,
    cash: float,
    room: float,
    slots: int,
    rules: BookRules,
    size: Sequence[float] | None = None,
) -> list[int]:
    """Whole shares for each candidate entry in priority order (0 = not entered), within ``cash``,
    the exposure ``room`` and ``slots`` new positions, each at most ``rules.weight_cap`` of equity
    and ``rules.risk_per_trade`` of equity lost at the stop; ``size`` scales each normal size."""
    out = [0] * len(prices)
    cap = rules.weight_cap
    fits = [p for p in prices if 0 < p <= min(cash, room, cap * equity)]
    if not fits:
        return out
    cheapest = min(fits)
    chosen = 0
    for i, p in enumerate(prices):
        if chosen >= slots or cash < cheapest or room < cheapest:
            break
        if not 0 < p <= min(cash, room, cap * equity):
            continue
        n = position_size(equity, cash, p, initial_stop(p, rules.stop_loss), rules.risk_per_trade, cap)
        n = math.floor(n * (size[i] if size is not None else 1.0))
        if room < math.inf:
            n = min(n, math.floor(room / p))
        if n <= 0 or n * p < rules.min_order_notional:
            continue
        out[i] = n
        chosen += 1
        cash -= n * p
        room -= n * p
    return out


def target_book(
    scores: Mapping[str, Score],
    book: Mapping[str, float],
    prices: Mapping[str, float],
    *,
    equity: float,
    cash: float,
    rules: BookRules,
    pending_buys: float = 0.0,
) -> TargetBook:
    """The session's target book (see the module docstring).

    ``book``: symbol -> quantity held now (long); ``prices``: last close per symbol; ``cash``: what may
    be spent (cash within buying power, less ``pending_buys``, the value of buys already working).
    """
    held = {s: float(q) for s, q in book.items() if q > 0}
    sel = select_topk(
        {s: v.score for s, v in scores.items()},
        held,
        k=rules.k,
        buffer=rules.hold_buffer,
        max_changes=rules.max_changes,
    )

    def line(sym: str, action: Literal["enter", "keep", "exit"], qty: float, note: str = "") -> Line:
        sc = scores.get(sym)
        return Line(
            symbol=sym,
            action=action,
            rank=sel.ranks.get(sym),
            score=sc.score if sc else None,
            prob_outperform=sc.prob_outperform if sc else None,
            expected_excess=sc.expected_excess if sc else None,
            price=prices.get(sym),
            held_qty=held.get(sym, 0.0),
            target_qty=qty,
            note=note,
        )

    held_value = sum(q * prices.get(s, 0.0) for s, q in held.items())
    room = rules.max_total_exposure * equity - held_value - pending_buys
    slots = rules.max_open_positions - len(held)
    entering = list(sel.enter)
    px = [prices.get(s, 0.0) for s in entering]
    qty = size_entries(px, equity=equity, cash=cash - pending_buys, room=room, slots=slots, rules=rules)
    sized = dict(zip(entering, qty, strict=True))
    lines: list[Line] = []
    for sym in sel.target:
        if sym in held:
            lines.append(line(sym, "keep", held[sym]))
        elif sized[sym] > 0:
            lines.append(line(sym, "enter", float(sized[sym])))
        else:
            why = (
                "no price"
                if prices.get(sym, 0.0) <= 0
                else "no room left by the risk rules this session "
                "(cash, exposure, position slots or minimum notional; leavers count until they fill)"
            )
            lines.append(line(sym, "enter", 0.0, why))
    lines += [line(sym, "exit", 0.0) for sym in sel.exit]
    return TargetBook(selection=sel, lines=tuple(lines), k=rules.k)


def orders_for(target: TargetBook, book: Mapping[str, float]) -> list[BookOrder]:
    """The orders that turn ``book`` (symbol -> quantity held) into ``target``: exits first (worst
    rank first), then entries in rank order. Entering names without shares get no order."""
    exits: list[BookOrder] = []
    entries: list[BookOrder] = []
    for ln in target.lines:
        have = float(book.get(ln.symbol, 0.0))
        delta = ln.target_qty - have
        if ln.action == "keep" or delta == 0:
            continue
        order = BookOrder(
            symbol=ln.symbol,
            side="buy" if delta > 0 else "sell",
            qty=abs(delta),
            intent="exit" if ln.action == "exit" else "entry",
            price=ln.price or 0.0,  # an exit without a price is refused by the risk engine, by name
            rank=ln.rank,
            score=ln.score,
            prob_outperform=ln.prob_outperform,
            expected_excess=ln.expected_excess,
        )
        (exits if order.intent == "exit" else entries).append(order)
    return exits + entries
