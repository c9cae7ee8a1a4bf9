"""Daily-loss circuit breaker: equity ``daily_loss_limit`` below the start-of-day equity trips it.

The start-of-day equity of a session is the last equity recorded for the session before it (the close
before the day's trading: a daily pipeline runs once per session), or the first equity ever recorded.
It is persisted per broker, so a restart during the day keeps the same reference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from stockflow.config.sections import RiskSettings
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import EquityMark
from stockflow.domain.orders import to_decimal
from stockflow.risk.state import StateInfo, trip_breaker


@dataclass(frozen=True, slots=True)
class BreakerCheck:
    """Outcome of one breaker check."""

    session: dt.date
    start_equity: Decimal
    equity: Decimal
    loss_fraction: Decimal  # (start - equity) / start; negative when up on the day
    limit: Decimal
    tripped: bool  # tripped by this check or earlier
    newly_tripped: bool
    state: StateInfo | None = None


def daily_loss_exceeded(
    start_equity: float | Decimal, equity: float | Decimal, limit: float | Decimal
) -> bool:
    """True when equity is at least ``limit`` (e.g. 0.05) below the start-of-day equity (pure)."""
    start, eq, lim = to_decimal(start_equity), to_decimal(equity), to_decimal(limit)
    if start <= 0:
        return eq < start
    return (start - eq) / start >= lim


def record_equity(engine: Engine, broker: str, session: dt.date, equity: Decimal) -> Decimal:
    """Record ``equity`` for ``session``; returns the session's start-of-day equity: the last equity
    recorded for the previous session (the close before this day's trading), or, on the very first
    record, this equity."""
    with transaction(engine) as s:
        stmt = select(EquityMark).where(EquityMark.broker == broker, EquityMark.session == session)
        row = s.scalars(stmt).one_or_none()
        if row is None:
            prev = s.scalars(
                select(EquityMark)
                .where(EquityMark.broker == broker, EquityMark.session < session)
                .order_by(EquityMark.session.desc())
                .limit(1)
            ).one_or_none()
            start = prev.last_equity if prev is not None else equity
            try:
                with s.begin_nested():
                    s.add(
                        EquityMark(
                            broker=broker,
                            session=session,
                            start_equity=start,
                            last_equity=equity,
                            recorded_at=utcnow(),
                            updated_at=utcnow(),
                        )
                    )
            except IntegrityError:
                pass
            row = s.scalars(stmt).one()
        else:
            row.last_equity, row.updated_at = equity, utcnow()
        return row.start_equity


def check_daily_loss(
    engine: Engine, broker: str, session: dt.date, equity: Decimal | float, settings: RiskSettings
) -> BreakerCheck:
    """Record equity and trip the breaker (state HALTED, persisted) when the daily loss limit is hit.

    Cancelling open orders and flattening (``settings.flatten_on_halt``) is the execution layer's job:
    see ``stockflow.execution.halt.enforce_halt``.
    """
    from stockflow.risk.state import get_state

    eq = to_decimal(equity)
    start = record_equity(engine, broker, session, eq)
    limit = to_decimal(settings.daily_loss_limit)
    loss = (start - eq) / start if start > 0 else Decimal(0)
    current = get_state(engine)
    if daily_loss_exceeded(start, eq, limit) and not current.breaker_tripped:
        detail = (
            f"daily loss {loss:.2%} on {session}: equity {eq:.2f} vs start-of-day {start:.2f} "
            f"(limit {limit:.2%})"
        )
        info = trip_breaker(engine, detail=detail)
        return BreakerCheck(session, start, eq, loss, limit, True, True, info)
    return BreakerCheck(session, start, eq, loss, limit, current.breaker_tripped, False, current)
