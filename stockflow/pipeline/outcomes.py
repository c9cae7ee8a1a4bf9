"""What a trade run did, as one frozen :class:`TradeSummary`, and how its outcome is worded.

The summary is what ``stockflow run`` prints, what the run's artifacts show and what the
``trade_runs`` row stores (:meth:`TradeSummary.as_dict`). Orders the broker already had from an
earlier run of the same session (``already_submitted``) are listed apart and never counted as sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockflow.domain.orders import OrderStatus, Position
from stockflow.logs import get_logger
from stockflow.pipeline.signals import SignalStatus
from stockflow.pipeline.trade_records import load_signals, set_signal_status, update_trade_run

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.execution.stops import StopAction
    from stockflow.execution.submit import ExecutionResult
    from stockflow.pipeline.model_choice import ModelChoice
    from stockflow.pipeline.plan import Plan, Refusal
    from stockflow.portfolio import TargetBook

Row = Mapping[str, Any]


@dataclass(frozen=True)
class TradeSummary:
    """Everything a trade run reports (see the module docstring)."""

    mode: str
    trade_run_id: int
    flow_run_id: str | None
    symbols: tuple[str, ...] = ()
    outcome: str = "Running"
    message: str = ""
    rows_ingested: int | None = None
    rows_new: int | None = None
    symbols_failed: Mapping[str, str] = field(default_factory=dict)
    expected_session: str | None = None
    stale: Mapping[str, str] = field(default_factory=dict)
    stops: tuple[Row, ...] = ()
    trading_state: str | None = None
    model_version: str | None = None
    signal_source: str | None = None
    predictions: int | None = None
    signals: Mapping[str, int] = field(default_factory=dict)
    portfolio: Mapping[str, Any] = field(default_factory=dict)  # k, entered, exited, kept, unfilled
    orders_sent: tuple[Row, ...] = ()
    orders_already_sent: tuple[Row, ...] = ()
    orders_refused: tuple[Row, ...] = ()
    signal_details: tuple[Row, ...] = ()
    approval: Row | None = None
    snapshot: Row = field(default_factory=dict)  # equity, cash, daily P&L, positions, links...

    def with_(self, **changes: Any) -> TradeSummary:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the fields, with the snapshot's figures at the top level."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "snapshot"}
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}
        out.update(self.snapshot)
        return out


def result_status(result: ExecutionResult) -> tuple[SignalStatus, str, str]:
    """The signal status, reason code and reason of one execution result."""
    if result.sent:
        order = result.order
        st = order.status.value if order is not None else result.outcome
        return SignalStatus.EXECUTED, f"sent:{result.outcome}", f"broker status {st}"
    return SignalStatus.FAILED, f"execution:{result.outcome}", result.error or result.outcome


def order_rows(
    plan: Plan, results: Sequence[ExecutionResult], extra_refused: Sequence[Refusal] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(sent, already sent, refused) rows for the summary and the ``trade-orders`` artifact. "Sent" is
    what reached the broker in this run; an order an earlier run of the session sent (and that may
    have been cancelled since) is "already sent" with its current status."""
    by_cid = {p.request.client_order_id: p for p in [*plan.auto, *plan.approval]}
    sent: list[dict[str, Any]] = []
    already: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = [
        {"symbol": r.symbol, "reason_code": r.reason_code, "reason": r.reason, "status": r.status.value}
        for r in [*plan.refused, *extra_refused]
    ]
    for res in results:
        req = res.request
        p = by_cid.get(req.client_order_id)
        row = {
            "symbol": req.symbol,
            "side": req.side.value,
            "qty": float(req.qty),
            "reference_price": float(req.reference_price or 0),
            "route": p.routed.route.value if p else "",
            "rank": p.routed.signal.rank if p else None,
            "client_order_id": req.client_order_id,
        }
        status = res.order.status.value if res.order is not None else OrderStatus.NEW.value
        if res.outcome == "already_submitted":
            already.append({**row, "status": status, "outcome": res.outcome})
        elif res.sent:
            sent.append({**row, "status": status, "outcome": res.outcome})
        else:
            refused.append(
                {
                    "symbol": req.symbol,
                    "reason_code": f"execution:{res.outcome}",
                    "reason": res.error or res.outcome,
                    "status": SignalStatus.FAILED.value,
                }
            )
    return sent, already, refused


def portfolio_rows(book: TargetBook, sent_symbols: set[str]) -> dict[str, Any]:
    """What the portfolio did: names entered (an order was sent), exited, kept, and left unfilled."""

    def names(action: str) -> list[str]:
        return [ln.symbol for ln in book.of(action)]

    return {
        "k": book.k,
        "entered": [s for s in names("enter") if s in sent_symbols],
        "exited": [s for s in names("exit") if s in sent_symbols],
        "kept": names("keep"),
        "not_entered": [s for s in names("enter") if s not in sent_symbols],
        "not_exited": [s for s in names("exit") if s not in sent_symbols],
    }


def signal_details(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per stored signal (``SignalRow``) with an order or a place in the target book; the
    others (not in the top k) are only counted."""
    out = []
    for r in rows:
        if r.route == "ignored" and r.reason_code not in ("book:keep", "book:no_room"):
            continue
        out.append(
            {"symbol": r.symbol, "action": r.action, "rank": r.rank, "score": r.score,
             "probability": round(r.probability, 4), "confidence": round(r.confidence, 4),
             "expected_excess": r.expected_excess, "route": r.route, "status": r.status,
             "reason_code": r.reason_code}
        )  # fmt: skip
    return sorted(out, key=lambda d: (d["rank"] is None, d["rank"] or 0, d["symbol"]))


def compose_message(summary: TradeSummary, *, choice_note: str | None) -> str:
    """The run's one-paragraph outcome: what the portfolio did, the orders and the account."""
    pf = summary.portfolio
    snap = summary.snapshot
    money = f"equity ${snap.get('equity', 0.0):,.2f}, daily P&L ${snap.get('daily_pnl', 0.0):+,.2f}"
    book = ""
    if pf:
        book = (
            f"top {pf['k']} book: entered {len(pf['entered'])}, exited {len(pf['exited'])}, "
            f"kept {len(pf['kept'])}"
        )
        if pf["not_entered"]:
            book += f"; not entered (no room under the risk limits, or refused): {len(pf['not_entered'])}"
        if pf["not_exited"]:
            book += f"; exits not sent (see refusals): {len(pf['not_exited'])}"
        book += "; "
    msg = f"{book}{len(summary.orders_sent)} order(s) sent, {len(summary.orders_refused)} refused"
    if summary.orders_already_sent:
        msg += f", {len(summary.orders_already_sent)} already sent by an earlier run of this session"
    msg += f"; {money}"
    if choice_note:
        msg += f"; {choice_note}"
    if summary.approval:
        msg = f"{summary.approval['message']}. {msg}"
    return msg


def outcome_of(approval_status: str | None) -> tuple[str, str | None, str]:
    """(outcome, Prefect state name or None for plain Completed, trade_runs status)."""
    if approval_status == "expired":
        return "Expired", "Expired", "expired"
    if approval_status == "refused":
        return "Refused", "Refused", "refused"
    return "Completed", None, "completed"


def log_plan(plan: Plan) -> None:
    """One log line per planned and refused order."""
    log = get_logger()
    for p in plan.auto:
        log.info(f"auto: {p.proposed.title} ({p.decision.reason_code})")
    for p in plan.approval:
        log.info(f"needs approval: {p.proposed.title} ({p.decision.reason_code})")
    for r in plan.refused:
        log.info(f"refused: {r.symbol}: {r.reason_code} - {r.reason}")


def held_quantities(positions: Sequence[Position]) -> dict[str, float]:
    """symbol -> signed quantity held."""
    return {p.symbol: float(p.qty) for p in positions if p.qty != 0}


def stop_row(stop: StopAction) -> dict[str, Any]:
    """A protective-stop action as plain data."""
    return {
        "symbol": stop.symbol,
        "qty": float(stop.qty),
        "stop_price": float(stop.stop_price),
        "previous_stop": None if stop.previous_stop is None else float(stop.previous_stop),
        "action": stop.action,
    }


def final_summary(
    summary: TradeSummary,
    *,
    stage: Any,
    plan: Plan,
    results: Sequence[ExecutionResult],
    approval: Any,
    choice: ModelChoice,
    snapshot: Row,
    signal_rows: Sequence[Any],
) -> TradeSummary:
    """The summary of a run that traded: the book's changes, the orders and the outcome message
    (``stage``: the target-book stage; ``approval``: the approval round or None)."""
    all_results = [*results, *(approval.results if approval else ())]
    extra = list(approval.refused) if approval else []
    sent, already, refused = order_rows(plan, all_results, extra)
    counts: dict[str, int] = {}
    for sig in stage.signals:
        counts[sig.action.value] = counts.get(sig.action.value, 0) + 1
    s = summary.with_(
        predictions=stage.predictions,
        signals=counts,
        portfolio=portfolio_rows(stage.book, {r["symbol"] for r in sent + already}),
        orders_sent=tuple(sent),
        orders_already_sent=tuple(already),
        orders_refused=tuple(refused),
        signal_details=tuple(signal_details(signal_rows)),
        snapshot=dict(snapshot),
        approval=None
        if approval is None
        else {"status": approval.status, "message": approval.message, "plan_hash": approval.plan_hash},
    )
    note = choice.message if choice.source != "champion" else None
    return s.with_(message=compose_message(s, choice_note=note))


def run_failed(engine: Engine, trade_run_id: int, err: BaseException) -> None:
    """A run stopped by an error: its undecided signals are cancelled and the run marked failed."""
    pending = [s.symbol for s in load_signals(engine, trade_run_id) if s.status in ("pending", "approved")]
    set_signal_status(
        engine,
        trade_run_id,
        pending,
        SignalStatus.CANCELLED,
        reason_code="run:error",
        reason=f"the run stopped: {type(err).__name__}: {err}",
        decided_by="run",
    )
    update_trade_run(engine, trade_run_id, status="failed", message=f"{type(err).__name__}: {err}")
