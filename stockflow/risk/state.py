"""The persisted trading state (kill switch) and the daily-loss breaker's trip/reset.

ACTIVE trades normally, REDUCING allows only orders that reduce positions, HALTED refuses every new
order but lets cancels through. The breaker sets HALTED and stays tripped until a person resets it:
``set_state`` refuses to leave HALTED while the breaker is tripped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import TradingStateEvent, TradingStateRow
from stockflow.domain.orders import TradingState
from stockflow.errors import HaltError

_ROW_ID = 1


class BreakerTrippedError(HaltError):
    """The daily-loss breaker is tripped: only ``reset_breaker`` (``stockflow state reset``) clears it."""


@dataclass(frozen=True, slots=True)
class StateInfo:
    """The trading state as stored."""

    state: TradingState
    reason: str
    set_by: str
    updated_at: dt.datetime
    breaker_tripped: bool
    breaker_detail: str
    breaker_tripped_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class StateEvent:
    """One change of the trading state."""

    kind: str
    state_from: str
    state_to: str
    reason: str
    actor: str
    created_at: dt.datetime


def _row(session: Session, *, lock: bool = False) -> TradingStateRow:
    stmt = select(TradingStateRow).where(TradingStateRow.id == _ROW_ID)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        try:
            with session.begin_nested():  # two first-ever callers may race to create the row
                session.add(
                    TradingStateRow(
                        id=_ROW_ID,
                        state=TradingState.ACTIVE.value,
                        reason="initial",
                        set_by="stockflow",
                        updated_at=utcnow(),
                        breaker_tripped=False,
                        breaker_detail="",
                    )
                )
        except IntegrityError:
            pass
        row = session.scalars(stmt).one()
    return row


def _info(row: TradingStateRow) -> StateInfo:
    return StateInfo(
        state=TradingState(row.state),
        reason=row.reason,
        set_by=row.set_by,
        updated_at=row.updated_at,
        breaker_tripped=row.breaker_tripped,
        breaker_detail=row.breaker_detail,
        breaker_tripped_at=row.breaker_tripped_at,
    )


def get_state(engine: Engine) -> StateInfo:
    """The current trading state (ACTIVE when never set)."""
    with transaction(engine) as s:
        return _info(_row(s))


def set_state(engine: Engine, state: TradingState | str, *, reason: str, actor: str) -> StateInfo:
    """Set the kill switch. Any state may be set while the breaker is not tripped; while it is, only
    HALTED (a no-op) is allowed, so that the breaker is cleared on purpose with ``reset_breaker``."""
    target = TradingState(state.upper() if isinstance(state, str) else state)
    if not reason.strip():
        raise ValueError("a reason is required to change the trading state")
    with transaction(engine) as s:
        row = _row(s, lock=True)
        if row.breaker_tripped and target is not TradingState.HALTED:
            raise BreakerTrippedError(
                f"the daily-loss breaker is tripped ({row.breaker_detail}); "
                "reset it with `stockflow state reset --reason ...` before setting "
                f"{target.value}"
            )
        s.add(
            TradingStateEvent(
                kind="set",
                state_from=row.state,
                state_to=target.value,
                reason=reason,
                actor=actor,
                created_at=utcnow(),
            )
        )
        row.state, row.reason, row.set_by, row.updated_at = target.value, reason, actor, utcnow()
        return _info(row)


def trip_breaker(engine: Engine, *, detail: str, actor: str = "breaker") -> StateInfo:
    """Trip the daily-loss breaker: state HALTED until a person resets it (idempotent)."""
    with transaction(engine) as s:
        row = _row(s, lock=True)
        if row.breaker_tripped:
            return _info(row)
        now = utcnow()
        s.add(
            TradingStateEvent(
                kind="breaker_trip",
                state_from=row.state,
                state_to=TradingState.HALTED.value,
                reason=detail,
                actor=actor,
                created_at=now,
            )
        )
        row.state, row.reason, row.set_by, row.updated_at = TradingState.HALTED.value, detail, actor, now
        row.breaker_tripped, row.breaker_detail, row.breaker_tripped_at = True, detail, now
        return _info(row)


def reset_breaker(
    engine: Engine, *, actor: str, reason: str, state: TradingState | str = TradingState.ACTIVE
) -> StateInfo:
    """Clear a tripped breaker (recording who and why) and set ``state`` (ACTIVE by default)."""
    target = TradingState(state.upper() if isinstance(state, str) else state)
    if not reason.strip():
        raise ValueError("a reason is required to reset the breaker")
    if not actor.strip():
        raise ValueError("an actor (who resets the breaker) is required")
    with transaction(engine) as s:
        row = _row(s, lock=True)
        s.add(
            TradingStateEvent(
                kind="reset",
                state_from=row.state,
                state_to=target.value,
                reason=f"{reason} (breaker was: {row.breaker_detail or 'not tripped'})",
                actor=actor,
                created_at=utcnow(),
            )
        )
        row.state, row.reason, row.set_by, row.updated_at = target.value, reason, actor, utcnow()
        row.breaker_tripped, row.breaker_detail, row.breaker_tripped_at = False, "", None
        return _info(row)


def state_history(engine: Engine, limit: int = 20) -> list[StateEvent]:
    """The latest state changes, newest first."""
    with transaction(engine) as s:
        rows = s.scalars(select(TradingStateEvent).order_by(TradingStateEvent.id.desc()).limit(limit)).all()
        return [StateEvent(r.kind, r.state_from, r.state_to, r.reason, r.actor, r.created_at) for r in rows]
