"""What a trade run shows in the Prefect UI: artifacts under stable keys, so each key's history in the
UI's Artifacts page is the day-by-day record.

- ``trade-orders`` (table): every signal of the run with its route, the order it became, and its fate
  (sent, refused by risk, rejected or expired in approval, failed at the broker) with the reason;
- ``trade-positions`` (table): positions after the run;
- ``trade-summary`` (markdown): outcome, equity, daily P&L and the performance metrics;
- ``equity-curve`` (link): the equity-curve page under ``reports_dir/equity/`` on the reports server;
- ``trade-reports`` (link): the standing view of the book on the reports server (positions, orders,
  approvals, equity over time, recent runs), which links every report.

Plain functions: :func:`trade_artifacts` returns what the artifacts show; ``tasks/artifacts.py``
publishes it (Prefect stays at the edge).

A run that took no portfolio snapshot (refused for stale data, locked) shows the latest snapshot's figures,
labelled as such, instead of blanks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from stockflow.db.engine import transaction
from stockflow.db.models_pipeline import PortfolioSnapshot
from stockflow.ops.reports import report_url
from stockflow.pipeline.trade_records import load_signals

if TYPE_CHECKING:
    from stockflow.config import Settings

ORDERS_KEY = "trade-orders"
POSITIONS_KEY = "trade-positions"
SUMMARY_KEY = "trade-summary"
EQUITY_KEY = "equity-curve"
REPORTS_KEY = "trade-reports"


def _fmt(v: Any, pattern: str = "{:,.2f}") -> str:
    if v is None:
        return "-"
    try:
        return pattern.format(v)
    except (TypeError, ValueError):
        return str(v)


def _last_snapshot(engine: Engine) -> dict[str, Any] | None:
    with transaction(engine) as s:
        snap = s.scalars(select(PortfolioSnapshot).order_by(PortfolioSnapshot.id.desc()).limit(1)).first()
        if snap is None:
            return None
        return {
            "equity": snap.equity,
            "daily_pnl": snap.daily_pnl,
            "daily_return": snap.daily_return,
            "cash": snap.cash,
            "exposure": snap.exposure,
            "total_return": snap.total_return,
            "max_drawdown": snap.max_drawdown,
            "snapshot_session": snap.session.isoformat(),
        }


def summary_markdown(summary: dict[str, Any]) -> str:
    """The ``trade-summary`` artifact."""
    if summary.get("equity") is None and summary.get("last_snapshot"):
        # No snapshot this run (refused for stale data...): the book's latest figures, labelled.
        last = summary["last_snapshot"]
        summary = {**summary, **{k: v for k, v in last.items() if k != "snapshot_session"}}
        summary["equity_note"] = f" (latest snapshot, session {last['snapshot_session']}; this run took none)"
    lines = [
        f"# Trade run: {summary.get('outcome', '?')}",
        "",
        f"{summary.get('message', '')}",
        "",
        "| | |",
        "| --- | --- |",
        f"| mode | {summary.get('mode', '-')} |",
        f"| session | {summary.get('expected_session', '-')} |",
        f"| model | {summary.get('model_version') or '-'} ({summary.get('signal_source', '-')}) |",
        f"| bars ingested (new) | {summary.get('rows_ingested', '-')} ({summary.get('rows_new', '-')}) |",
        f"| predictions | {summary.get('predictions', '-')} |",
        f"| orders sent / refused | {len(summary.get('orders_sent') or [])} / "
        f"{len(summary.get('orders_refused') or [])} |",
        f"| orders already sent by an earlier run of the session | "
        f"{len(summary.get('orders_already_sent') or [])} |",
        f"| equity | ${_fmt(summary.get('equity'))}{summary.get('equity_note', '')} |",
        f"| daily P&L | ${_fmt(summary.get('daily_pnl'), '{:+,.2f}')} "
        f"({_fmt(summary.get('daily_return'), '{:+.2%}')}) |",
        f"| cash | ${_fmt(summary.get('cash'))} |",
        f"| exposure | {_fmt(summary.get('exposure'), '{:.1%}')} |",
        f"| total return | {_fmt(summary.get('total_return'), '{:+.2%}')} |",
        f"| Sharpe (annualised) | {_fmt(summary.get('sharpe'), '{:.2f}')} |",
        f"| max drawdown | {_fmt(summary.get('max_drawdown'), '{:.2%}')} |",
        f"| win rate (round trips) | {_fmt(summary.get('win_rate'), '{:.0%}')} "
        f"({summary.get('n_round_trips', 0)}) |",
    ]
    pf = summary.get("portfolio") or {}
    if pf:
        lines += ["", f"**Portfolio (top {pf.get('k')}).**"]
        for key in ("entered", "exited", "kept", "not_entered", "not_exited"):
            if pf.get(key) or key in ("entered", "exited", "kept"):
                lines.append(f"- {key.replace('_', ' ')}: {', '.join(pf.get(key) or []) or '-'}")
    if summary.get("approval"):
        a = summary["approval"]
        lines += ["", f"**Approval: {a.get('status')}.** {a.get('message', '')}"]
    if summary.get("stale"):
        stale = list(summary["stale"].items())
        more = f"; and {len(stale) - 50} more" if len(stale) > 50 else ""
        lines += ["", "Stale symbols: " + "; ".join(f"{k}: {v}" for k, v in stale[:50]) + more]
    if summary.get("equity_curve"):
        lines += ["", f"[Equity curve]({summary['equity_curve']}) · [The book]({summary.get('reports', '')})"]
    return "\n".join(lines)


def order_table(
    engine: Engine, trade_run_id: int, stops: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Rows of the ``trade-orders`` artifact: the fate of every signal with an order or a place in the
    book, in rank order (symbols outside the top k only count), then stop-order actions."""
    rows: list[dict[str, Any]] = []
    signals = [s for s in load_signals(engine, trade_run_id) if s.route != "ignored" or s.action != "hold"
               or s.reason_code in ("book:keep", "book:no_room")]  # fmt: skip
    signals.sort(key=lambda s: (s.rank is None, s.rank or 0, s.symbol))
    for s in signals:
        rows.append(
            {
                "rank": s.rank,
                "symbol": s.symbol,
                "signal": s.action.upper(),
                "score": s.score,
                "expected_excess": s.expected_excess,
                "P(outperform)": round(s.confidence, 3),
                "route": s.route,
                # "executed" only means the broker accepted it; its reason says the broker's status.
                "status": f"sent ({s.reason})" if s.status == "executed" and s.reason else s.status,
                "side": (s.side or "").upper(),
                "qty": s.qty,
                "reference_price": s.reference_price,
                "risk_taken": s.risk_amount,
                "reason_code": s.reason_code,
                "reason": (s.reason or "")[:300],
                "client_order_id": s.client_order_id or "",
            }
        )
    for st in stops or []:
        rows.append(
            {
                "rank": None,
                "symbol": st.get("symbol"),
                "signal": "STOP",
                "score": None,
                "expected_excess": None,
                "P(outperform)": None,
                "route": "stops",
                "status": st.get("action"),
                "side": "SELL",
                "qty": st.get("qty"),
                "reference_price": st.get("stop_price"),
                "risk_taken": None,
                "reason_code": f"stop:{st.get('action')}",
                "reason": f"protective stop {st.get('previous_stop')} -> {st.get('stop_price')}",
                "client_order_id": "",
            }
        )
    return rows


@dataclass(frozen=True)
class Link:
    """A link artifact's content."""

    url: str
    text: str
    description: str


@dataclass(frozen=True)
class TradeArtifacts:
    """What the run's artifacts show (module docstring); ``tasks.artifacts`` publishes it under the keys."""

    orders: list[dict[str, Any]]  # the signals' fates; empty: no signal this run
    orders_description: str
    positions: list[dict[str, Any]]
    summary: str  # markdown
    equity: Link | None
    reports: Link
    message: str = ""

    def orders_table(self) -> list[dict[str, Any]]:
        """The ``trade-orders`` table (one placeholder row when the run had no signal)."""
        return self.orders or [{"symbol": "-", "status": "no signal this run", "reason": self.message}]

    def positions_table(self) -> list[dict[str, Any]]:
        """The ``trade-positions`` table (one placeholder row when nothing is held)."""
        return self.positions or [{"symbol": "-", "qty": 0, "note": "no open position"}]


def trade_artifacts(
    settings: Settings, engine: Engine, *, trade_run_id: int, summary: dict[str, Any]
) -> TradeArtifacts:
    """The content of the run's artifacts (module docstring), read from the summary and the store."""
    rows = order_table(engine, trade_run_id, summary.get("stops"))
    if summary.get("equity") is None:
        summary = {**summary, "last_snapshot": _last_snapshot(engine)}
    curve = summary.get("equity_curve")
    return TradeArtifacts(
        orders=rows,
        orders_description=f"Orders sent and refused with reasons ({summary.get('expected_session', '')})",
        positions=list(summary.get("positions") or []),
        summary=summary_markdown(summary),
        equity=Link(curve, "Equity curve", "Equity curve") if curve else None,
        reports=Link(
            report_url(settings),
            "The book: positions, orders, approvals, equity over time, recent runs",
            "Standing view of the book (links every report)",
        ),
        message=summary.get("message", ""),
    )
