"""The previous backtest session loop (numpy over symbols, Python over sessions), kept verbatim as the
reference that the numba kernel (stockflow.backtest.kernel) must reproduce: same fills, same equity."""

from __future__ import annotations

import math

import numpy as np

from stockflow.backtest.book import TopkRule
from stockflow.backtest.config import BacktestConfig
from stockflow.backtest.panel import Panel, SignalPanel
from stockflow.backtest.result import EXIT_REASONS
from stockflow.risk.sizing import position_size
from stockflow.risk.stops import initial_stop, stop_fill_price, stop_triggered, update_trailing_stop

# Reason codes of fills (index into EXIT_REASONS).
_ENTRY, _SIGNAL, _STOP, _TRAIL, _END = range(5)
assert EXIT_REASONS[_STOP] == "stop" and EXIT_REASONS[_END] == "end"


class _Fills:
    """Fill columns collected as one numpy chunk per event batch, concatenated once at the end."""

    def __init__(self) -> None:
        self.chunks: list[
            tuple[int, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, object]
        ] = []

    def add(
        self,
        t: int,
        idx: np.ndarray,
        *,
        side: int,
        qty: np.ndarray,
        price: np.ndarray,
        ref: np.ndarray,
        commission: np.ndarray,
        reason: np.ndarray | int,
    ) -> None:
        self.chunks.append((t, idx, side, qty, price, ref, commission, reason))

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.chunks:
            e_i, e_f = np.empty(0, dtype=np.int64), np.empty(0)
            return {
                "t": e_i,
                "sym": e_i,
                "side": np.empty(0, np.int8),
                "qty": e_f,
                "price": e_f,
                "ref": e_f,
                "commission": e_f,
                "reason": np.empty(0, np.int8),
            }
        sizes = np.fromiter((len(c[1]) for c in self.chunks), dtype=np.int64, count=len(self.chunks))

        def cat(k: int, dtype: type) -> np.ndarray:
            return np.concatenate([c[k] for c in self.chunks]).astype(dtype, copy=False)

        reasons = [
            c[7] if isinstance(c[7], np.ndarray) else np.full(n, c[7], dtype=np.int8)
            for c, n in zip(self.chunks, sizes.tolist(), strict=True)
        ]
        return {
            "t": np.repeat(np.fromiter((c[0] for c in self.chunks), dtype=np.int64), sizes),
            "sym": cat(1, np.int64),
            "side": np.repeat(np.fromiter((c[2] for c in self.chunks), dtype=np.int8), sizes),
            "qty": cat(3, np.float64),
            "price": cat(4, np.float64),
            "ref": cat(5, np.float64),
            "commission": cat(6, np.float64),
            "reason": np.concatenate(reasons).astype(np.int8),
        }


def reference_simulate(
    panel: Panel, sig: SignalPanel, config: BacktestConfig, rule: TopkRule | None = None
) -> dict[str, np.ndarray]:
    """Run the session loop; returns the equity-curve arrays and the fill columns.

    See the module docstring for the order of events within a session. With ``rule`` (the live target
    book, :mod:`stockflow.backtest.book`) step 4 is the rule's exits and sized entries instead.
    """
    n_sessions, n_symbols = panel.shape
    opn, high, low, close, valid = panel.open, panel.high, panel.low, panel.close, panel.valid
    # Value positions at the last known close when a symbol has no bar that session.
    mark = np.nan_to_num(_ffill(close), nan=0.0)
    # Whole-panel arrays once, so that the loop only slices rows.
    want_long = sig.entry & valid
    exit_wish = _exit_wish(sig.target)
    fixed = config.sizing == "fixed_notional"
    if fixed:
        assert config.fixed_notional is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            fixed_qty = np.floor(config.fixed_notional * sig.size / close)
            fixed_cost = fixed_qty * close
        want_long &= (fixed_qty > 0) & (fixed_cost >= config.min_order_notional)
    costs = config.costs
    buy_mult, sell_mult = 1.0 + costs.slip, 1.0 - costs.slip
    per_order, per_share, pct = costs.commission_per_order, costs.commission_per_share, costs.commission_pct

    def commission(q: np.ndarray, px: np.ndarray) -> np.ndarray:
        # Same formula as Costs.commission / the paper broker, skipping terms that are zero (speed).
        c = np.full(q.shape, per_order)
        if per_share:
            c += per_share * q
        if pct:
            c += pct * q * px
        return c

    qty = np.zeros(n_symbols)
    held = np.zeros(n_symbols, dtype=bool)
    flat = np.ones(n_symbols, dtype=bool)
    entry_px = np.zeros(n_symbols)
    entry_t = np.full(n_symbols, -1)
    stop = np.full(n_symbols, -np.inf)
    first_stop = np.full(n_symbols, -np.inf)
    hse = np.zeros(n_symbols)
    pend_exit = np.zeros(n_symbols, dtype=bool)
    pend_qty = np.zeros(n_symbols)
    pend_order = np.empty(0, dtype=np.int64)
    cash = float(config.initial_cash)

    equity = np.empty(n_sessions)
    cash_curve = np.empty(n_sessions)
    pos_value = np.empty(n_sessions)
    n_pos = np.zeros(n_sessions, dtype=np.int64)
    fills = _Fills()
    use_stops = config.use_stops
    max_open = config.max_open_positions
    max_orders = config.max_orders_per_session
    last = n_sessions - 1

    n_held = 0
    n_pend = 0

    def sell(t: int, idx: np.ndarray, ref: np.ndarray, reason: np.ndarray | int) -> None:
        nonlocal cash, n_held
        n_held -= idx.size
        q = qty[idx]
        px = ref * sell_mult
        comm = commission(q, px)
        cash += float((q * px - comm).sum())
        fills.add(t, idx, side=-1, qty=q, price=px, ref=ref, commission=comm, reason=reason)
        qty[idx] = 0.0
        held[idx] = False
        flat[idx] = True
        pend_exit[idx] = False
        if use_stops:
            stop[idx] = -np.inf

    for t in range(n_sessions):
        vt = valid[t]
        # 1. Open: exits first (they free cash), then entries decided at the previous close.
        if n_pend:
            idx = np.flatnonzero(pend_exit & vt)
            if idx.size:
                sell(t, idx, opn[t, idx], _SIGNAL)
        if pend_order.size:
            idx = pend_order[vt[pend_order]]
            if idx.size:
                ref = opn[t, idx]
                px = ref * buy_mult
                q = pend_qty[idx]
                comm = commission(q, px)
                cost = q * px + comm
                if cost.sum() > cash:
                    # Not all fit: the paper broker fills in submission order (by strength, then symbol;
                    # a book rule's entries are already in rank order).
                    rank = np.argsort(
                        -sig.strength[t - 1, idx] if rule is None else np.zeros(idx.size), kind="stable"
                    )
                    idx, ref, px, q, comm, cost = (a[rank] for a in (idx, ref, px, q, comm, cost))
                    ok = _affordable(cost, cash)
                    idx, ref, px, q, comm, cost = idx[ok], ref[ok], px[ok], q[ok], comm[ok], cost[ok]
                if idx.size:
                    cash -= float(cost.sum())
                    n_held += idx.size
                    qty[idx] = q
                    held[idx] = True
                    flat[idx] = False
                    if use_stops:
                        entry_px[idx] = px
                        entry_t[idx] = t
                        hse[idx] = px
                        stop[idx] = [initial_stop(p, config.stop_loss) for p in px.tolist()]
                    fills.add(t, idx, side=1, qty=q, price=px, ref=ref, commission=comm, reason=_ENTRY)
            pend_order = np.empty(0, dtype=np.int64)
        if use_stops and n_held:
            # 2. Intraday: resting stops (placed after the entry day) meet the day's low. The shared rule
            # is a plain comparison, so numpy applies it to every position at once.
            triggered = stop_triggered(stop, low[t])  # type: ignore[arg-type]
            hit = np.flatnonzero(held & (entry_t < t) & triggered)
            if hit.size:
                ref = np.array(
                    [
                        stop_fill_price(s, o)
                        for s, o in zip(stop[hit].tolist(), opn[t, hit].tolist(), strict=True)
                    ]
                )
                reason = np.where(stop[hit] > first_stop[hit], _TRAIL, _STOP)
                sell(t, hit, ref, reason)
            # 3. Close: stops follow the high since entry (new positions get their first stop).
            if n_held:
                _update_stops(
                    t,
                    held & vt,
                    bar_high=high[t],
                    hse=hse,
                    stop=stop,
                    first_stop=first_stop,
                    entry_px=entry_px,
                    entry_t=entry_t,
                    config=config,
                )
        if t == last and config.close_at_end and n_held:
            idx = np.flatnonzero(held)
            sell(t, idx, mark[t, idx], _END)
        pv = float(qty @ mark[t]) if n_held else 0.0
        equity[t] = cash + pv
        cash_curve[t] = cash
        pos_value[t] = pv
        n_pos[t] = n_held
        if t == last:
            break
        # 4. Decide at the close; orders fill at the next open.
        orders_left = n_symbols if max_orders is None else max_orders
        n_pend = 0
        if rule is not None:
            ex, order, q = rule.decide(t, held, qty, mark[t], equity=equity[t], cash=cash)
            pend_exit[:] = False
            pend_exit[ex[:orders_left]] = True
            n_pend = min(ex.size, orders_left)
            left = max(orders_left - n_pend, 0)
            if order.size and left:
                pend_qty[order[:left]] = q[:left]
                pend_order = order[:left]
            continue
        if n_held:
            np.logical_and(held, exit_wish[t], out=pend_exit)
            n_pend = int(np.count_nonzero(pend_exit))
            if max_orders is not None and n_pend:
                ex = np.flatnonzero(pend_exit)
                if ex.size > max_orders:
                    pend_exit[ex[max_orders:]] = False  # the rest wait for a later session
                    n_pend = max_orders
                orders_left -= n_pend
        if orders_left <= 0:
            continue
        cand = np.flatnonzero(want_long[t] & flat)
        if cand.size == 0:
            continue
        slots = orders_left if max_open is None else min(orders_left, max_open - n_held)
        if slots <= 0:
            continue
        eq = equity[t]
        room = math.inf
        if config.max_total_exposure is not None:
            room = config.max_total_exposure * eq - pv
            if room <= 0:
                continue
        if fixed:
            # Rank order matters only when not every candidate fits: sort only then.
            notional = fixed_cost[t, cand]
            if cand.size > slots or notional.sum() > min(room, cash):
                rank = np.argsort(-sig.strength[t, cand], kind="stable")
                cand, notional = cand[rank], notional[rank]
                keep = np.cumsum(notional) <= min(room, cash)
                cand = cand[keep][:slots]
            order, q = cand, fixed_qty[t, cand]
        else:
            order = cand[np.argsort(-sig.strength[t, cand], kind="stable")] if cand.size > 1 else cand
            order, q = _risk_sized(
                order,
                close[t, order],
                sig.size[t],
                equity=eq,
                cash=cash,
                room=room,
                slots=slots,
                config=config,
            )
        if order.size:
            pend_qty[order] = q
            pend_order = order

    out = fills.arrays()
    out.update(equity=equity, cash=cash_curve, positions_value=pos_value, n_positions=n_pos)
    return out


def _update_stops(
    t: int,
    mask: np.ndarray,
    *,
    bar_high: np.ndarray,
    hse: np.ndarray,
    stop: np.ndarray,
    first_stop: np.ndarray,
    entry_px: np.ndarray,
    entry_t: np.ndarray,
    config: BacktestConfig,
) -> None:
    """At the close of ``t``: raise the high since entry and the stops of ``mask`` positions (in place).

    Only positions entered today or with a new high can move (the trailing rule is a ratchet).
    """
    new = mask & (entry_t == t)
    up = np.flatnonzero(new | (mask & (bar_high > hse)))
    if not up.size:
        return
    hse[up] = np.maximum(hse[up], bar_high[up])
    trail, act, tick = config.trailing_stop, config.trailing_activation, config.stop_tick
    for i in up.tolist():
        prev = stop[i]
        s = prev if trail is None else update_trailing_stop(entry_px[i], prev, hse[i], trail, act)
        if tick is not None:
            # Stored in cents like the live ledger: rounded to the tick, never below the previous stop.
            s = round(s / tick) * tick
            if entry_t[i] != t:
                s = max(s, prev)
        stop[i] = s
    first = np.flatnonzero(new)
    if first.size:
        first_stop[first] = stop[first]


def _affordable(cost: np.ndarray, cash: float) -> np.ndarray:
    """Which entries (in priority order) the cash pays for; the others are rejected whole."""
    ok = np.zeros(len(cost), dtype=bool)
    for k, c in enumerate(cost.tolist()):
        if c <= cash:
            ok[k] = True
            cash -= c
    return ok


def _exit_wish(target: np.ndarray) -> np.ndarray:
    """Where a held position should be exited: from a flat (0/-1) target until the next long target,
    through sessions without an opinion (an exit that could not fill, e.g. no bar, stays wanted)."""
    n = target.shape[0]
    event = np.where((target == 0) | (target == -1), 1, np.where(target == 1, 0, -1)).astype(np.int8)
    idx = np.where(event >= 0, np.arange(n)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.take_along_axis(event, np.maximum(idx, 0), axis=0)
    return (idx >= 0) & (filled == 1)  # type: ignore[no-any-return]


def _risk_sized(
    order: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    *,
    equity: float,
    cash: float,
    room: float,
    slots: int,
    config: BacktestConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Entries in rank order sized by the live loop's ``position_size``, within cash/exposure/slots."""
    chosen: list[int] = []
    qtys: list[float] = []
    # Not one share fits: skip without calling the sizing function (it would return 0).
    fits = price <= min(cash, room, config.max_position_weight * equity)
    order, price = order[fits], price[fits]
    if not order.size:
        return order, np.empty(0)
    cheapest = float(price.min())
    for i, p in zip(order.tolist(), price.tolist(), strict=True):
        if len(chosen) >= slots or cash < cheapest or room < cheapest:
            break
        if p > cash or p > room:
            continue
        stop_price = initial_stop(p, config.stop_loss)
        n = position_size(equity, cash, p, stop_price, config.risk_per_trade, config.max_position_weight)
        n = math.floor(n * size[i])
        if room < math.inf:
            n = min(n, math.floor(room / p))
        if n <= 0 or n * p < config.min_order_notional:
            continue
        chosen.append(i)
        qtys.append(float(n))
        cash -= n * p
        room -= n * p
    return np.asarray(chosen, dtype=np.int64), np.asarray(qtys)


def _ffill(a: np.ndarray) -> np.ndarray:
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    return a[idx, np.arange(a.shape[1])[None, :]]  # type: ignore[no-any-return]
