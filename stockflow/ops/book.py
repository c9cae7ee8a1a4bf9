"""The standing view of the book: what a trader looks for between runs, read from the state store.

:func:`collect_book` gathers, as plain JSON values: the trading state (kill switch, breaker), the latest
equity figures (from the latest portfolio snapshot, so a run refused for stale data never blanks them),
positions with their P&L at the last close, open orders (protective stops at the broker included),
approvals that wait with their deadline and a link to the paused run, the equity curve over time (one point
per snapshot), recent trade runs with their outcome, and which demo settings are active.

The reports server serves it as ``/book.json`` and as the page ``/`` (``stockflow/ops/static/book.html``,
which polls the JSON while a run works); ``stockflow status`` prints :func:`format_book`.
Times are ISO 8601 in UTC in the JSON and shown with their zone (the exchange's, America/New_York).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

if TYPE_CHECKING:
    from stockflow.config import Settings

#: The zone times are shown in (the exchange's, like the schedules).
DISPLAY_ZONE = ZoneInfo("America/New_York")
#: How many recent trade runs and equity points the view carries.
RECENT_RUNS = 15
CURVE_POINTS = 500


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat(timespec="seconds")
    return value.isoformat()


def show_time(value: str | dt.datetime | None, zone: ZoneInfo = DISPLAY_ZONE) -> str:
    """A timestamp as a person reads it, with its zone: ``2026-12-02 16:30 EST``; ``-`` when missing."""
    if value is None:
        return "-"
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    local = when.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _num(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def demo_settings(settings: Settings) -> list[str]:
    """The demo/test opt-ins in effect, each as ``setting=value``; empty for a normal operation."""
    active = []
    if settings.trading.signal_source == "best_challenger":
        active.append(
            "trading.signal_source=best_challenger (trades a model that did NOT beat the baselines)"
        )
    return active


def flow_run_url(ui_url: str | None, flow_run_id: str | None) -> str | None:
    """The Prefect UI page of a flow run (where a paused run's Resume button is)."""
    if not ui_url or not flow_run_id:
        return None
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def _last_closes(
    engine: Engine, symbols: list[str], on_or_before: dt.date | None = None
) -> dict[str, tuple[float, str]]:
    """The last close per symbol, on or before ``on_or_before`` (the book's session: a replayed session
    must not be valued with later bars)."""
    from stockflow.db.models_data import BarRow as Bar

    if not symbols:
        return {}
    cond: Any = Bar.symbol.in_(symbols)
    if on_or_before is not None:
        cond = cond & (Bar.session <= on_or_before)
    with engine.connect() as conn:
        last = (
            select(Bar.symbol, func.max(Bar.session).label("session"))
            .where(cond)
            .group_by(Bar.symbol)
            .subquery()
        )
        rows = conn.execute(
            select(Bar.symbol, Bar.session, Bar.close).join(
                last, (Bar.symbol == last.c.symbol) & (Bar.session == last.c.session)
            )
        ).all()
    return {r.symbol: (float(r.close), r.session.isoformat()) for r in rows}


def collect_book(settings: Settings, engine: Engine, *, ui_url: str | None = None) -> dict[str, Any]:
    """The standing view (module docstring) as a JSON-ready dict."""
    from stockflow.db.engine import transaction
    from stockflow.db.models_pipeline import ApprovalRequest, PortfolioSnapshot, TradeRun
    from stockflow.db.models_trading import LedgerPosition, OrderRow, TradingStateRow
    from stockflow.domain.orders import OPEN_STATUSES

    with transaction(engine) as s:
        st = s.get(TradingStateRow, 1)
        state = {
            "state": st.state if st else "ACTIVE",
            "reason": st.reason if st else "",
            "set_by": st.set_by if st else "",
            "since": _iso(st.updated_at) if st else None,
            "breaker_tripped": bool(st and st.breaker_tripped),
            "breaker_detail": st.breaker_detail if st else "",
        }
        snaps = list(
            s.scalars(select(PortfolioSnapshot).order_by(PortfolioSnapshot.id.desc()).limit(CURVE_POINTS))
        )
        ledger = [r for r in s.scalars(select(LedgerPosition).order_by(LedgerPosition.symbol)) if r.qty != 0]
        orders = list(
            s.scalars(
                select(OrderRow)
                .where(OrderRow.status.in_([o.value for o in OPEN_STATUSES]))
                .order_by(OrderRow.id.desc())
                .limit(100)
            )
        )
        waiting = list(
            s.scalars(
                select(ApprovalRequest)
                .where(ApprovalRequest.status == "pending")
                .order_by(ApprovalRequest.deadline)
            )
        )
        runs = list(s.scalars(select(TradeRun).order_by(TradeRun.id.desc()).limit(RECENT_RUNS)))

        latest = snaps[0] if snaps else None
        equity = (
            {
                "equity": latest.equity,
                "cash": latest.cash,
                "positions_value": latest.positions_value,
                "exposure": latest.exposure,
                "daily_pnl": latest.daily_pnl,
                "daily_return": latest.daily_return,
                "total_return": latest.total_return,
                "max_drawdown": latest.max_drawdown,
                "session": _iso(latest.session),
                "taken_at": _iso(latest.taken_at),
                "trade_run_id": latest.trade_run_id,
            }
            if latest
            else None
        )
        curve = [
            {"taken_at": _iso(p.taken_at), "session": _iso(p.session), "equity": p.equity}
            for p in reversed(snaps)
        ]
        closes = _last_closes(engine, [r.symbol for r in ledger], latest.session if latest else None)
        positions = []
        for r in ledger:
            qty = float(r.qty)
            avg = float(r.cost_basis / r.qty)
            last, last_session = closes.get(r.symbol, (None, None))
            positions.append(
                {
                    "symbol": r.symbol,
                    "broker": r.broker,
                    "qty": qty,
                    "avg_price": round(avg, 4),
                    "last_close": last,
                    "last_session": last_session,
                    "market_value": None if last is None else round(qty * last, 2),
                    "unrealized_pnl": None if last is None else round((last - avg) * qty, 2),
                    "unrealized_pct": None if last is None or not avg else round(last / avg - 1.0, 4),
                    "realized_pnl": round(float(r.realized_pnl), 2),
                    "stop_price": _num(r.stop_price),
                }
            )
        open_orders = [
            {
                "symbol": o.symbol,
                "side": o.side,
                "qty": float(o.qty),
                "filled_qty": float(o.filled_qty),
                "type": o.type,
                "stop_price": _num(o.stop_price),
                "limit_price": _num(o.limit_price),
                "status": o.status,
                "intent": o.intent,
                "origin": o.origin,
                "broker": o.broker,
                "session": _iso(o.session),
                "submitted_at": _iso(o.submitted_at),
                "client_order_id": o.client_order_id,
            }
            for o in orders
        ]
        approvals = [
            {
                "trade_run_id": a.trade_run_id,
                "flow_run_id": a.flow_run_id,
                "link": flow_run_url(ui_url, a.flow_run_id),
                "deadline": _iso(a.deadline),
                "orders": [
                    f"{o.get('side', '?').upper()} {o.get('qty', '?')} {o.get('symbol', '?')}" for o in a.plan
                ],
                "plan_hash": a.plan_hash,
            }
            for a in waiting
        ]
        recent = [
            {
                "id": r.id,
                "flow_run_id": r.flow_run_id,
                "link": flow_run_url(ui_url, r.flow_run_id),
                "mode": r.mode,
                "status": r.status,
                "outcome": (r.summary or {}).get("outcome"),
                "session": _iso(r.expected_session),
                "started_at": _iso(r.started_at),
                "finished_at": _iso(r.finished_at),
                "model_version": r.model_version,
                "signal_source": r.signal_source,
                "orders_sent": len((r.summary or {}).get("orders_sent") or []),
                "message": (r.message or "")[:400],
            }
            for r in runs
        ]
    return {
        "generated_at": _iso(dt.datetime.now(dt.UTC)),
        "display_zone": str(DISPLAY_ZONE),
        "trading_state": state,
        "equity": equity,
        "positions": positions,
        "open_orders": open_orders,
        "approvals": approvals,
        "equity_curve": curve,
        "runs": recent,
        "running": any(r["status"] in ("running", "awaiting_approval") for r in recent),
        "demo_settings": demo_settings(settings),
        "ui_url": ui_url,
    }


def _money(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"${v:+,.2f}" if sign else f"${v:,.2f}"


def format_book(book: dict[str, Any]) -> str:
    """The standing view as terminal lines (``stockflow status``)."""
    st = book["trading_state"]
    lines = [
        f"Trading      {st['state']}"
        + (f" since {show_time(st['since'])} ({st['reason']})" if st["reason"] else "")
        + ("  BREAKER TRIPPED: " + st["breaker_detail"] if st["breaker_tripped"] else "")
    ]
    for d in book["demo_settings"]:
        lines.append(f"DEMO SETTING {d}")
    eq = book["equity"]
    if eq:
        lines.append(
            f"Equity       {_money(eq['equity'])}, daily P&L {_money(eq['daily_pnl'], True)}, cash "
            f"{_money(eq['cash'])}, exposure {eq['exposure']:.1%} (session {eq['session']}, "
            f"snapshot {show_time(eq['taken_at'])})"
        )
    else:
        lines.append("Equity       no snapshot yet (no trade run finished)")
    lines.append(f"Positions    {len(book['positions'])}")
    for p in book["positions"]:
        pct = f" ({p['unrealized_pct']:+.2%})" if p["unrealized_pct"] is not None else ""
        stop = f", stop {p['stop_price']:.2f}" if p["stop_price"] else ""
        lines.append(
            f"  {p['symbol']:<6} {p['qty']:>8g} @ {p['avg_price']:.2f}, last {p['last_close'] or '-'} "
            f"({p['last_session'] or '-'}), P&L {_money(p['unrealized_pnl'], True)}{pct}{stop}"
        )
    lines.append(f"Open orders  {len(book['open_orders'])}")
    for o in book["open_orders"]:
        price = f" stop {o['stop_price']:.2f}" if o["stop_price"] else ""
        price += f" limit {o['limit_price']:.2f}" if o["limit_price"] else ""
        lines.append(
            f"  {o['symbol']:<6} {o['side'].upper()} {o['qty']:g} {o['type']}{price} {o['status']} "
            f"({o['intent']}, {o['broker']})"
        )
    lines.append(f"Approvals    {len(book['approvals'])} waiting")
    for a in book["approvals"]:
        lines.append(
            f"  trade run {a['trade_run_id']}: {', '.join(a['orders'])}; deadline {show_time(a['deadline'])}"
            f" -> {a['link'] or 'stockflow approve ' + str(a['flow_run_id'])}"
        )
    lines.append(f"Recent runs  {len(book['runs'])}")
    for r in book["runs"][:5]:
        lines.append(
            f"  #{r['id']:<4} {show_time(r['started_at'])} {r['mode']:<6} {r['status']:<18} "
            f"{(r['message'] or '')[:90]}"
        )
    return "\n".join(lines)
