"""The backtest session loop compiled with numba: one pass over the symbols per step, no temporaries.

:func:`run_sessions` runs sessions ``t .. stop_at - 1`` of the rules documented in
:mod:`stockflow.backtest.engine` on the panel's arrays and the loop state (:class:`LoopState`), which
it updates in place. It is the only implementation of the loop: the engine calls it for every session
range (all sessions at once, or one at a time when a target-book rule decides in Python between
sessions). The shared risk rules are the live loop's own functions (stockflow.risk.stops/sizing),
compiled here, not re-written. Sums of several fills use numpy's pairwise summation (:func:`npsum`), so
cash is bit-for-bit what the numpy engine computed; ``cache=True`` compiles once per machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stockflow.risk.sizing import shares_at_risk
from stockflow.risk.stops import stop_below, stop_fill_price, trail_stop

# Reason codes of fills (index into stockflow.backtest.result.EXIT_REASONS).
ENTRY, SIGNAL, STOP, TRAIL, END = range(5)

_stop_below = njit(cache=True)(stop_below)
_trail = njit(cache=True)(trail_stop)
_fill_at_stop = njit(cache=True)(stop_fill_price)
_shares = njit(cache=True)(shares_at_risk)

# Float parameters (fp) and integer parameters (ip) of run_sessions, by position.
FP = ("buy_mult", "sell_mult", "per_order", "per_share", "pct", "stop_loss", "trail", "act", "tick",
      "risk_per_trade", "max_weight", "min_notional", "fixed_notional", "max_exposure")  # fmt: skip
IP = ("use_stops", "max_open", "max_orders", "close_at_end", "fixed", "decide", "rank_by_strength")
# Integer state (istate): positions held, pending exits, pending entries, fills written.
N_HELD, N_PEND, N_ORDER, N_FILLS = range(4)


@njit(cache=True)
def npsum(a: np.ndarray, n: int) -> float:  # pragma: no cover (compiled)
    """``a[:n].sum()`` exactly as numpy adds a contiguous float64 vector (pairwise, 8 accumulators)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        r = a[:8].copy()
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return npsum(a, n2) + npsum(a[n2:], n - n2)  # type: ignore[no-any-return]


@njit(cache=True)
def _commission(fp: np.ndarray, q: float, px: float) -> float:  # pragma: no cover (compiled)
    """Costs.commission / the paper broker's formula, skipping terms that are zero."""
    c = fp[2]
    if fp[3] != 0.0:
        c += fp[3] * q
    if fp[4] != 0.0:
        c += fp[4] * q * px
    return c


@njit(cache=True)
def _sell(t, k, idx, ref, reason, fp, use_stops, st, istate, fills, fcols, buf):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Sell positions ``idx[:k]`` at ``ref * (1 - slip)``; returns the cash they bring."""
    qty, held, pend_exit, stop = st[0], st[6], st[7], st[3]
    nf = istate[N_FILLS]
    for j in range(k):
        i = idx[j]
        q = qty[i]
        px = ref[j] * fp[1]
        comm = _commission(fp, q, px)
        buf[j] = q * px - comm
        fills[0, nf], fills[1, nf], fills[2, nf], fills[3, nf] = t, i, -1, reason[j]
        fcols[0, nf], fcols[1, nf], fcols[2, nf], fcols[3, nf] = q, px, ref[j], comm
        nf += 1
        qty[i] = 0.0
        held[i] = 0.0
        pend_exit[i] = 0.0
        if use_stops:
            stop[i] = -np.inf
    istate[N_FILLS] = nf
    istate[N_HELD] -= k
    return npsum(buf, k)


@njit(cache=True)
def run_sessions(t, stop_at, opn, high, low, close, valid, target, entry, strength, size,  # type: ignore[no-untyped-def]  # noqa: PLR0917
                 fp, ip, st, entry_t, pend_order, istate, cash, fills, fcols, curves, n_pos):  # fmt: skip
    """Run sessions ``t .. stop_at - 1`` (state in place); returns the next session to run, earlier
    when the fill buffers may not hold one more session (the caller grows them and calls again).

    ``st`` rows: qty, entry price, high since entry, stop, first stop, pending qty, held, pending exit,
    mark (last close), exit wish; ``cash`` is a 1-array; ``fills`` rows t, symbol, side, reason;
    ``fcols`` rows qty, price, ref, commission; ``curves`` rows equity, cash, positions value.
    """
    n_sessions, n = close.shape
    qty, entry_px, hse, stop, first_stop, pend_qty = st[0], st[1], st[2], st[3], st[4], st[5]
    held, pend_exit, mark, wish = st[6], st[7], st[8], st[9]
    use_stops, max_open, max_orders = ip[0], ip[1], ip[2]
    fixed, decide, by_strength = ip[4], ip[5], ip[6]
    tick, trail, max_exposure = fp[8], fp[6], fp[13]
    idx = np.empty(n, dtype=np.int64)
    ref = np.empty(n)
    px = np.empty(n)
    q = np.empty(n)
    cm = np.empty(n)
    cost = np.empty(n)
    reason = np.empty(n, dtype=np.int64)
    last = n_sessions - 1
    while t < stop_at:
        if fills.shape[1] - istate[N_FILLS] < 2 * n:
            return t
        for i in range(n):
            if not np.isnan(close[t, i]):
                mark[i] = close[t, i]
            g = target[t, i]
            if -1 <= g <= 0:
                wish[i] = 1.0
            elif g == 1:
                wish[i] = 0.0
        # 1. Open: exits first (they free cash), then entries decided at the previous close.
        if istate[N_PEND]:
            k = 0
            for i in range(n):
                if pend_exit[i] and valid[t, i]:
                    idx[k] = i
                    ref[k] = opn[t, i]
                    reason[k] = SIGNAL
                    k += 1
            if k:
                cash[0] += _sell(t, k, idx, ref, reason, fp, use_stops, st, istate, fills, fcols, cost)
        if istate[N_ORDER]:
            k = 0
            for j in range(istate[N_ORDER]):
                i = pend_order[j]
                if valid[t, i]:
                    idx[k] = i
                    ref[k] = opn[t, i]
                    px[k] = ref[k] * fp[0]
                    q[k] = pend_qty[i]
                    cm[k] = _commission(fp, q[k], px[k])
                    cost[k] = q[k] * px[k] + cm[k]
                    k += 1
            if k and npsum(cost, k) > cash[0]:
                # Not all fit: the paper broker fills in submission order (by strength, then symbol;
                # a book rule's entries are already in rank order); the others are rejected whole.
                rank = np.arange(k)
                if by_strength:
                    rank = np.argsort(-strength[t - 1][idx[:k]], kind="mergesort")
                left = cash[0]
                kk = 0
                o_idx, o_ref, o_px, o_q = idx[rank], ref[rank], px[rank], q[rank]
                o_cm, o_cost = cm[rank], cost[rank]
                for j in range(k):
                    if o_cost[j] <= left:
                        idx[kk], ref[kk], px[kk], q[kk] = o_idx[j], o_ref[j], o_px[j], o_q[j]
                        cm[kk], cost[kk] = o_cm[j], o_cost[j]
                        left -= o_cost[j]
                        kk += 1
                k = kk
            if k:
                cash[0] -= npsum(cost, k)
                istate[N_HELD] += k
                nf = istate[N_FILLS]
                for j in range(k):
                    i = idx[j]
                    qty[i] = q[j]
                    held[i] = 1.0
                    if use_stops:
                        entry_px[i] = px[j]
                        entry_t[i] = t
                        hse[i] = px[j]
                        stop[i] = _stop_below(px[j], fp[5])
                    fills[0, nf], fills[1, nf], fills[2, nf], fills[3, nf] = t, i, 1, ENTRY
                    fcols[0, nf], fcols[1, nf], fcols[2, nf], fcols[3, nf] = q[j], px[j], ref[j], cm[j]
                    nf += 1
                istate[N_FILLS] = nf
            istate[N_ORDER] = 0
        if use_stops and istate[N_HELD]:
            # 2. Intraday: resting stops (placed after the entry day) meet the day's low.
            k = 0
            for i in range(n):
                if held[i] and entry_t[i] < t and low[t, i] <= stop[i]:
                    idx[k] = i
                    ref[k] = _fill_at_stop(stop[i], opn[t, i])
                    reason[k] = TRAIL if stop[i] > first_stop[i] else STOP
                    k += 1
            if k:
                cash[0] += _sell(t, k, idx, ref, reason, fp, use_stops, st, istate, fills, fcols, cost)
            # 3. Close: stops follow the high since entry (new positions get their first stop), rounded
            # to the tick like the live ledger's cents and never below the previous stop.
            for i in range(n):
                if held[i] and valid[t, i]:
                    new = entry_t[i] == t
                    if new or high[t, i] > hse[i]:
                        hse[i] = max(hse[i], high[t, i])
                        prev = stop[i]
                        s = prev if np.isnan(trail) else _trail(entry_px[i], prev, hse[i], trail, fp[7])
                        if not np.isnan(tick):
                            s = np.rint(s / tick) * tick
                            if not new:
                                s = max(s, prev)
                        stop[i] = s
                        if new:
                            first_stop[i] = s
        if t == last and ip[3] and istate[N_HELD]:
            k = 0
            for i in range(n):
                if held[i]:
                    idx[k] = i
                    ref[k] = mark[i]
                    reason[k] = END
                    k += 1
            cash[0] += _sell(t, k, idx, ref, reason, fp, use_stops, st, istate, fills, fcols, cost)
        pv = np.dot(qty, mark) if istate[N_HELD] else 0.0
        eq = cash[0] + pv
        curves[0, t], curves[1, t], curves[2, t] = eq, cash[0], pv
        n_pos[t] = istate[N_HELD]
        t += 1
        if t > last or not decide:
            continue
        # 4. Decide at the close of t - 1; orders fill at the next open.
        d = t - 1
        orders_left = n if max_orders < 0 else max_orders
        istate[N_PEND] = 0
        if istate[N_HELD]:
            n_pend = 0
            for i in range(n):
                pend_exit[i] = 1.0 if held[i] != 0.0 and wish[i] != 0.0 else 0.0
                if pend_exit[i] != 0.0:
                    n_pend += 1
                    if max_orders >= 0 and n_pend > max_orders:
                        pend_exit[i] = 0.0  # the rest wait for a later session
            if max_orders >= 0 and n_pend:
                n_pend = min(n_pend, max_orders)
                orders_left -= n_pend
            istate[N_PEND] = n_pend
        if orders_left <= 0:
            continue
        k = 0
        for i in range(n):
            if held[i] or not (entry[d, i] and valid[d, i]):
                continue
            if fixed:
                fq = np.floor(fp[12] * size[d, i] / close[d, i])
                fc = fq * close[d, i]
                if not (fq > 0 and fc >= fp[11]):
                    continue
                q[k] = fq
                cost[k] = fc
            idx[k] = i
            k += 1
        if k == 0:
            continue
        slots = orders_left if max_open < 0 else min(orders_left, max_open - istate[N_HELD])
        if slots <= 0:
            continue
        room = np.inf
        if not np.isnan(max_exposure):
            room = max_exposure * eq - pv
            if room <= 0:
                continue
        if fixed:
            # Rank order matters only when not every candidate fits: sort only then.
            lim = min(room, cash[0])
            if k > slots or npsum(cost, k) > lim:
                rank = np.argsort(-strength[d][idx[:k]], kind="mergesort")
                o_idx, o_q, o_cost = idx[rank], q[rank], cost[rank]
                total = 0.0
                kk = 0
                for j in range(k):
                    total += o_cost[j]
                    if total <= lim and kk < slots:
                        idx[kk], q[kk] = o_idx[j], o_q[j]
                        kk += 1
                k = kk
        else:
            if k > 1:
                rank = np.argsort(-strength[d][idx[:k]], kind="mergesort")
                idx[:k] = idx[:k][rank]
            k = _risk_sized(k, idx, q, close[d], size[d], eq, cash[0], room, slots, fp)
        for j in range(k):
            pend_qty[idx[j]] = q[j]
            pend_order[j] = idx[j]
        istate[N_ORDER] = k
    return t


@njit(cache=True)
def _risk_sized(k, idx, q, price, size, equity, cash, room, slots, fp):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Entries ``idx[:k]`` (rank order) sized by the live loop's ``position_size`` within cash, exposure
    room and slots: compacts them to the chosen ones in ``idx``/``q``; returns how many."""
    cap = min(cash, room, fp[10] * equity)
    cheapest = np.inf
    for j in range(k):
        if price[idx[j]] <= cap:
            cheapest = min(cheapest, price[idx[j]])
    chosen = 0
    for j in range(k):
        i = idx[j]
        p = price[i]
        if not p <= cap:
            continue  # not one share fits: skipped without calling the sizing function
        if chosen >= slots or cash < cheapest or room < cheapest:
            break
        if p > cash or p > room:
            continue
        n = _shares(equity, cash, p, _stop_below(p, fp[5]), fp[9], fp[10])
        n = np.floor(n * size[i])
        if room < np.inf:
            n = min(n, np.floor(room / p))
        if n <= 0 or n * p < fp[11]:
            continue
        idx[chosen] = i
        q[chosen] = n
        chosen += 1
        cash -= n * p
        room -= n * p
    return chosen
