"""The pipeline's rows: trade runs, signals with their fate, approval requests. Every write is one
transaction; statuses only move forward (a decided signal is never set back to pending)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update

from stockflow.crashed import claim_run
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_pipeline import ApprovalRequest, SignalRow, TradeRun
from stockflow.pipeline.approval import ProposedOrder
from stockflow.pipeline.modes import Routed
from stockflow.pipeline.signals import SignalStatus

#: Signal statuses that are final: nothing changes them any more.
FINAL_STATUSES = frozenset(
    {
        SignalStatus.REJECTED,
        SignalStatus.EXPIRED,
        SignalStatus.EXECUTED,
        SignalStatus.FAILED,
        SignalStatus.CANCELLED,
        SignalStatus.IGNORED,
    }
)


def start_trade_run(engine: Engine, *, flow_run_id: str | None, mode: str, signal_source: str) -> int:
    """Create the row of a new trade run; returns its id."""
    with transaction(engine) as s:
        row = TradeRun(
            flow_run_id=flow_run_id,
            mode=mode,
            status="running",
            started_at=utcnow(),
            signal_source=signal_source,
            summary={},
            message="",
        )
        s.add(row)
        s.flush()
        claim_run(s, "trade", int(row.id), flow_run_id)  # (issue 12) a dead run is marked crashed
        return int(row.id)


def update_trade_run(engine: Engine, trade_run_id: int, **values: Any) -> None:
    """Set columns of a trade run (``finished_at`` is set with a final status)."""
    if values.get("status") in ("completed", "expired", "refused", "failed") and "finished_at" not in values:
        values["finished_at"] = utcnow()
    with transaction(engine) as s:
        s.execute(update(TradeRun).where(TradeRun.id == trade_run_id).values(**values))


def save_signals(
    engine: Engine,
    trade_run_id: int,
    routed: Sequence[Routed],
    orders: Mapping[str, ProposedOrder] | None = None,
    statuses: Mapping[str, tuple[SignalStatus, str, str]] | None = None,
) -> dict[str, int]:
    """Store every routed signal of a run; returns symbol -> signal id.

    ``orders`` gives the order each signal became (after risk) and ``statuses`` overrides the initial
    status with (status, reason_code, reason): e.g. a denial by risk. Without an override a signal routed
    to ``ignored`` is stored IGNORED, others PENDING.
    """
    now = utcnow()
    ids: dict[str, int] = {}
    with transaction(engine) as s:
        for r in routed:
            sig = r.signal
            o = (orders or {}).get(sig.symbol)
            status, code, reason = (statuses or {}).get(
                sig.symbol,
                (
                    SignalStatus.IGNORED if r.route.value == "ignored" else SignalStatus.PENDING,
                    r.reason_code,
                    r.reason,
                ),
            )
            row = SignalRow(
                trade_run_id=trade_run_id,
                symbol=sig.symbol,
                session=sig.session,
                action=sig.action.value,
                probability=sig.probability,
                confidence=sig.confidence,
                model_confidence=sig.model_confidence,
                model_version=sig.model_version,
                drivers=[d.as_dict() for d in sig.drivers],
                route=r.route.value,
                status=status.value,
                reason_code=code[:64],
                reason=f"{reason}. {sig.explain()}",
                side=None if o is None else o.side,
                qty=None if o is None else o.qty,
                reference_price=None if o is None else o.reference_price,
                stop_price=None if o is None else o.stop_price,
                risk_amount=None if o is None else o.risk_amount,
                client_order_id=None if o is None else o.client_order_id,
                decided_by="mode"
                if status is SignalStatus.IGNORED
                else ("risk" if statuses and sig.symbol in statuses else None),
                created_at=now,
                updated_at=now,
                rank=sig.rank,
                score=sig.score,
                expected_excess=sig.expected_excess,
            )
            s.add(row)
            s.flush()
            ids[sig.symbol] = int(row.id)
    return ids


def set_signal_status(
    engine: Engine,
    trade_run_id: int,
    symbols: Iterable[str],
    status: SignalStatus,
    *,
    reason_code: str,
    reason: str,
    decided_by: str,
    note: str | None = None,
) -> int:
    """Move signals of a run to ``status`` unless they are already final; returns rows changed."""
    syms = list(symbols)
    if not syms:
        return 0
    with transaction(engine) as s:
        res = s.execute(
            update(SignalRow)
            .where(
                SignalRow.trade_run_id == trade_run_id,
                SignalRow.symbol.in_(syms),
                SignalRow.status.not_in([x.value for x in FINAL_STATUSES]),
            )
            .values(
                status=status.value,
                reason_code=reason_code[:64],
                reason=reason,
                decided_by=decided_by,
                decision_note=note,
                updated_at=utcnow(),
            )
        )
        return int(getattr(res, "rowcount", 0) or 0)


def load_signals(engine: Engine, trade_run_id: int) -> list[SignalRow]:
    """Signals of one run, by symbol."""
    with transaction(engine) as s:
        return list(
            s.scalars(
                select(SignalRow).where(SignalRow.trade_run_id == trade_run_id).order_by(SignalRow.symbol)
            )
        )


# -- approval requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingApproval:
    """An approval request as ``stockflow approve --list`` shows it."""

    id: int
    trade_run_id: int
    flow_run_id: str | None
    plan_hash: str
    orders: tuple[ProposedOrder, ...]
    status: str
    created_at: dt.datetime
    deadline: dt.datetime

    @property
    def symbols(self) -> list[str]:
        """Symbols of the plan, in plan order."""
        return [o.symbol for o in self.orders]


def _pending(row: ApprovalRequest) -> PendingApproval:
    return PendingApproval(
        id=row.id,
        trade_run_id=row.trade_run_id,
        flow_run_id=row.flow_run_id,
        plan_hash=row.plan_hash,
        orders=tuple(ProposedOrder.model_validate(o) for o in row.plan),
        status=row.status,
        created_at=row.created_at,
        deadline=row.deadline,
    )


def create_approval_request(
    engine: Engine,
    *,
    trade_run_id: int,
    flow_run_id: str | None,
    orders: Sequence[ProposedOrder],
    plan_hash: str,
    description: str,
    deadline: dt.datetime,
) -> int:
    """Store the plan shown to a person (before the run pauses)."""
    with transaction(engine) as s:
        row = ApprovalRequest(
            trade_run_id=trade_run_id,
            flow_run_id=flow_run_id,
            plan_hash=plan_hash,
            plan=[o.model_dump(mode="json") for o in orders],
            description=description,
            status="pending",
            created_at=utcnow(),
            deadline=deadline,
            decision={},
            note="",
            message="",
        )
        s.add(row)
        s.flush()
        return int(row.id)


def close_approval_request(
    engine: Engine,
    request_id: int,
    *,
    status: str,
    message: str,
    decision: Mapping[str, str] | None = None,
    note: str = "",
) -> None:
    """Record how an approval request ended (decided / expired / refused / abandoned)."""
    with transaction(engine) as s:
        row = s.get(ApprovalRequest, request_id)
        if row is None:
            raise KeyError(f"approval request {request_id} does not exist")
        row.status = status
        row.message = message
        row.decision = dict(decision or {})
        row.note = note
        row.decided_at = utcnow()


def get_approval_request(engine: Engine, request_id: int) -> PendingApproval:
    """One approval request."""
    with transaction(engine) as s:
        row = s.get(ApprovalRequest, request_id)
        if row is None:
            raise KeyError(f"approval request {request_id} does not exist")
        return _pending(row)


def pending_approvals(engine: Engine, *, since: dt.datetime | None = None) -> list[PendingApproval]:
    """Approval requests still pending (oldest first), optionally created at or after ``since``."""
    with transaction(engine) as s:
        q = select(ApprovalRequest).where(ApprovalRequest.status == "pending")
        if since is not None:
            q = q.where(ApprovalRequest.created_at >= since)
        return [_pending(r) for r in s.scalars(q.order_by(ApprovalRequest.id))]


def abandon_stale_approvals(engine: Engine, *, now: dt.datetime | None = None) -> list[int]:
    """Close pending requests whose deadline passed (their run died while paused): status ``abandoned``
    and their pending signals EXPIRED. Returns the request ids closed."""
    now = now or utcnow()
    closed: list[int] = []
    with transaction(engine) as s:
        rows = list(
            s.scalars(
                select(ApprovalRequest).where(
                    ApprovalRequest.status == "pending", ApprovalRequest.deadline < now
                )
            )
        )
        for row in rows:
            row.status = "abandoned"
            row.message = "the run ended without an answer (deadline passed); orders expired unapproved"
            row.decided_at = now
            s.execute(
                update(SignalRow)
                .where(
                    SignalRow.trade_run_id == row.trade_run_id, SignalRow.status == SignalStatus.PENDING.value
                )
                .values(
                    status=SignalStatus.EXPIRED.value,
                    reason_code="approval:abandoned",
                    reason=row.message,
                    decided_by="timeout",
                    updated_at=now,
                )
            )
            closed.append(int(row.id))
    return closed
