"""Portfolio snapshots and performance metrics (win rate, Sharpe, drawdown), one row per session.

The metrics use the backtester's definitions (``stockflow.backtest.metrics``) so that live and backtest
figures mean the same thing: Sharpe is the annualised mean / std of daily returns (risk-free 0),
max drawdown the largest peak-to-trough fall of equity as a negative fraction, win rate the share of
round trips (flat -> position -> flat, per symbol) with positive net P&L after commissions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from stockflow.backtest.metrics import equity_metrics, trade_metrics
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_pipeline import PortfolioSnapshot
from stockflow.domain.orders import ZERO, Account, Book, Fill, Position, apply_fill


@dataclass(frozen=True, slots=True)
class Performance:
    """Performance over the whole history up to a session."""

    total_return: float
    sharpe: float | None
    max_drawdown: float
    win_rate: float | None
    n_round_trips: int
    realized_pnl: float


@dataclass(frozen=True, slots=True)
class SnapshotValues:
    """What a snapshot stores (plain floats for reports; exact money stays in the trading ledger)."""

    broker: str
    session: dt.date
    equity: float
    cash: float
    positions_value: float
    exposure: float
    daily_pnl: float
    daily_return: float
    positions: tuple[dict[str, Any], ...]
    performance: Performance

    @property
    def n_positions(self) -> int:
        """Open positions."""
        return len(self.positions)


def round_trip_pnl(fills: Sequence[Fill]) -> list[float]:
    """Net P&L (after commissions) of every closed round trip, per symbol in time order.

    A round trip starts when a symbol's position leaves zero and ends when it returns to zero (a fill
    that crosses through zero closes one trip and opens the next).
    """
    out: list[float] = []
    by_symbol: dict[str, list[Fill]] = {}
    for f in sorted(fills, key=lambda f: (f.timestamp, f.execution_id)):
        by_symbol.setdefault(f.symbol, []).append(f)
    for sym_fills in by_symbol.values():
        book = Book()
        start_realized, start_comm = ZERO, ZERO
        for f in sym_fills:
            before = book
            book = apply_fill(book, f.side, f.qty, f.price, f.commission)
            if before.qty == 0:
                start_realized, start_comm = before.realized_pnl, before.commissions
            crossed = before.qty != 0 and (book.qty == 0 or (book.qty > 0) != (before.qty > 0))
            if crossed:
                # Commission of the closing fill counts to the trip it closes.
                pnl = (book.realized_pnl - start_realized) - (book.commissions - start_comm)
                out.append(float(pnl))
                start_realized, start_comm = book.realized_pnl, book.commissions
    return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def performance(
    equity_by_session: Sequence[tuple[dt.date, float]], initial_cash: float, fills: Sequence[Fill]
) -> Performance:
    """Metrics of the equity curve (one point per session, sorted) and of the round trips in ``fills``."""
    eq = np.array([e for _, e in sorted(equity_by_session)], dtype=float)
    trips = round_trip_pnl(fills)
    em = equity_metrics(eq, initial_cash)
    tm = trade_metrics(np.array(trips, dtype=float))
    realized = sum(trips)
    return Performance(
        total_return=float(em["total_return"]) if len(eq) else 0.0,
        sharpe=_finite_or_none(em["sharpe"]),
        max_drawdown=float(em["max_drawdown"]) if len(eq) else 0.0,
        win_rate=_finite_or_none(tm["win_rate"]),
        n_round_trips=len(trips),
        realized_pnl=float(realized),
    )


def equity_history(engine: Engine, broker: str) -> list[tuple[dt.date, float]]:
    """(session, equity) of every stored snapshot of ``broker``, oldest first."""
    q = (
        select(PortfolioSnapshot.session, PortfolioSnapshot.equity)
        .where(PortfolioSnapshot.broker == broker)
        .order_by(PortfolioSnapshot.session)
    )
    with engine.connect() as conn:
        return [(s, float(e)) for s, e in conn.execute(q)]


def build_snapshot(
    *,
    broker: str,
    session: dt.date,
    account: Account,
    positions: Sequence[Position],
    history: Sequence[tuple[dt.date, float]],
    initial_cash: float,
    fills: Sequence[Fill],
    prev_equity: float | None = None,
    flows: float = 0.0,
) -> SnapshotValues:
    """The snapshot of ``session``: account, positions, P&L since ``prev_equity`` (default: the
    previous session's snapshot, or the initial cash) less today's deposits ``flows``, and the
    performance over ``history`` plus this session (see :mod:`stockflow.execution.pnl`)."""
    equity = float(account.equity)
    prior = [(s, e) for s, e in history if s < session]
    if prev_equity is None:
        prev_equity = prior[-1][1] if prior else float(initial_cash)
    curve = [*prior, (session, equity)]
    pos_value = float(sum((p.market_value for p in positions), Decimal(0)))
    rows = tuple(
        {
            "symbol": p.symbol,
            "qty": float(p.qty),
            "avg_entry_price": float(p.avg_entry_price),
            "current_price": None if p.current_price is None else float(p.current_price),
            "market_value": float(p.market_value),
            "unrealized_pnl": float(p.unrealized_pnl),
        }
        for p in sorted(positions, key=lambda p: p.symbol)
        if p.qty != 0
    )
    return SnapshotValues(
        broker=broker,
        session=session,
        equity=equity,
        cash=float(account.cash),
        positions_value=pos_value,
        exposure=abs(pos_value) / equity if equity > 0 else 0.0,
        daily_pnl=equity - flows - prev_equity,
        daily_return=(equity - flows) / prev_equity - 1.0 if prev_equity > 0 else 0.0,
        positions=rows,
        performance=performance(curve, initial_cash, fills),
    )


def save_snapshot(
    engine: Engine, snap: SnapshotValues, *, trade_run_id: int | None, flow_run_id: str | None
) -> None:
    """Insert or replace the snapshot of (broker, session): the last run of a session wins."""
    perf = snap.performance
    values = {
        "broker": snap.broker,
        "session": snap.session,
        "taken_at": utcnow(),
        "trade_run_id": trade_run_id,
        "flow_run_id": flow_run_id,
        "equity": snap.equity,
        "cash": snap.cash,
        "positions_value": snap.positions_value,
        "exposure": snap.exposure,
        "daily_pnl": snap.daily_pnl,
        "daily_return": snap.daily_return,
        "n_positions": snap.n_positions,
        "positions": list(snap.positions),
        "total_return": perf.total_return,
        "win_rate": perf.win_rate,
        "n_round_trips": perf.n_round_trips,
        "sharpe": perf.sharpe,
        "max_drawdown": perf.max_drawdown,
        "realized_pnl": perf.realized_pnl,
    }
    with transaction(engine) as s:
        dialect = s.get_bind().dialect.name
        table = PortfolioSnapshot.__table__
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)  # type: ignore[arg-type]
        update = {k: v for k, v in values.items() if k not in ("broker", "session")}
        s.execute(
            ins.values(**values).on_conflict_do_update(index_elements=["broker", "session"], set_=update)
        )


def plot_equity_curve(
    history: Sequence[tuple[dt.date, float]], out_dir: Path, *, initial_cash: float
) -> Path:
    """Write ``equity-curve.png`` and an ``index.html`` page around it into ``out_dir``; return the page.

    The PNG is drawn with matplotlib (Agg, no display needed); the page needs no network.
    """
    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    pts = sorted(history)
    fig, (ax, ax_dd) = plt.subplots(
        2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if pts:
        xs = [s for s, _ in pts]
        ys = np.array([e for _, e in pts], dtype=float)
        ax.plot(xs, ys, marker="o" if len(pts) < 40 else None, lw=1.5, color="#1f77b4")
        peak = np.maximum.accumulate(np.concatenate([[initial_cash], ys]))[1:]
        ax_dd.fill_between(xs, ys / peak - 1.0, 0, color="#d62728", alpha=0.4, step="mid")
    ax.axhline(initial_cash, color="grey", lw=0.8, ls="--", label=f"initial cash ${initial_cash:,.0f}")
    ax.set_title("stockflow equity curve (one point per session)")
    ax.set_ylabel("equity ($)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    png = out_dir / "equity-curve.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    last = f"${pts[-1][1]:,.2f} on {pts[-1][0]}" if pts else "no snapshot yet"
    rows = "".join(
        f"<tr><td>{s}</td><td style='text-align:right'>{e:,.2f}</td></tr>" for s, e in reversed(pts[-30:])
    )
    page = out_dir / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>stockflow equity curve</title></head>"
        "<body style='font-family:sans-serif;max-width:960px;margin:2em auto'>"
        f"<h1>Equity curve</h1><p>Latest equity: {last}.</p>"
        "<img src='equity-curve.png' alt='equity curve' style='max-width:100%'>"
        f"<h2>Last sessions</h2><table><tr><th>session</th><th>equity ($)</th></tr>{rows}</table>"
        "</body></html>"
    )
    return page
