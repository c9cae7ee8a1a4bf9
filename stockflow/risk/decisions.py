"""Persisting risk decisions, so that a user can see why each trade happened or did not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Engine, select

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import RiskDecisionRow
from stockflow.risk.limits import RiskDecision


def record_decisions(
    engine: Engine, run_id: str, decisions: Sequence[RiskDecision], *, session: dt.date | None = None
) -> None:
    """Store every decision of one run (one row each) in one transaction."""
    with transaction(engine) as s:
        for d in decisions:
            r = d.request
            s.add(
                RiskDecisionRow(
                    run_id=run_id,
                    session=session,
                    client_order_id=r.client_order_id,
                    symbol=r.symbol,
                    side=r.side.value,
                    intent=r.intent,
                    qty_requested=r.qty,
                    qty_approved=d.approved_qty,
                    reference_price=r.reference_price,
                    action=d.action,
                    reason_code=d.reason_code,
                    detail=d.detail,
                    created_at=utcnow(),
                )
            )


def load_decisions(engine: Engine, run_id: str | None = None, limit: int = 200) -> list[RiskDecisionRow]:
    """Stored decisions (of one run, or the latest ``limit``), oldest first."""
    with transaction(engine) as s:
        stmt = select(RiskDecisionRow)
        if run_id is not None:
            stmt = stmt.where(RiskDecisionRow.run_id == run_id)
        rows = list(s.scalars(stmt.order_by(RiskDecisionRow.id.desc()).limit(limit)).all())
        return rows[::-1]
