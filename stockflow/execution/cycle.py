"""The trading steps of one run, in the order the pipeline calls them (each usable on its own):

1. ``start_of_run``: paper broker processes the new bars (fills at the open), reconciliation, the
   daily-loss breaker (tripping it enforces HALTED at the broker), protective stops.
2. the caller proposes orders; ``stockflow.risk.limits.check_orders`` decides; ``record_decisions``.
3. ``stockflow.execution.submit.execute_orders`` sends the approved ones idempotently.
4. ``stockflow.execution.poll.await_orders`` (brokers that fill immediately) and ``reconcile`` again.

All of it under ``stockflow.execution.lock.run_lock`` so that two runs never trade at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from stockflow.brokers.base import Broker
from stockflow.config.sections import RiskSettings
from stockflow.domain.orders import Account, Order, Position, TradingState, to_decimal
from stockflow.execution.guards import pdt_state
from stockflow.execution.halt import HaltReport, enforce_halt
from stockflow.execution.reconcile import ReconcileReport, reconcile
from stockflow.execution.stops import StopAction, bar_ranges, manage_stops
from stockflow.risk.breaker import BreakerCheck, check_daily_loss
from stockflow.risk.pdt import DayTrades
from stockflow.risk.state import StateInfo, get_state


@dataclass
class StartOfRun:
    """Everything the risk engine needs after the start-of-run steps."""

    account: Account
    positions: list[Position]
    open_orders: list[Order]
    state: StateInfo
    reconcile: ReconcileReport
    breaker: BreakerCheck
    halt: HaltReport | None = None
    stops: list[StopAction] = field(default_factory=list)
    #: Day trades of the window ending on the date orders sent now fill (the risk engine's PDT rule).
    day_trades: DayTrades | None = None


def start_of_run(
    engine: Engine,
    broker: Broker,
    settings: RiskSettings,
    *,
    run_id: str,
    session: dt.date,
    bars: Any | None = None,
) -> StartOfRun:
    """Steps 1 of the module docstring. ``bars`` (a polars bar frame) feeds the paper broker and the
    stops; raises ``HaltError`` when reconciliation finds an unexplained difference."""
    process = getattr(broker, "process_bars", None)
    if bars is not None and callable(process):
        process(bars)
    rec = reconcile(engine, broker, run_id=run_id)
    breaker = check_daily_loss(engine, broker.name, session, rec.account.equity, settings)
    state = get_state(engine)
    halt = None
    if state.state is TradingState.HALTED:
        halt = enforce_halt(
            engine,
            broker,
            settings,
            run_id=run_id,
            session=session,
            flatten=settings.flatten_on_halt and breaker.newly_tripped,
        )
    stops: list[StopAction] = []
    if bars is not None:
        stops = manage_stops(
            engine, broker, settings, run_id=run_id, session=session, bars=bar_ranges(bars, session)
        )
    account = broker.account()
    return StartOfRun(
        account=account,
        positions=broker.positions(),
        open_orders=broker.open_orders(),
        state=state,
        reconcile=rec,
        breaker=breaker,
        halt=halt,
        stops=stops,
        day_trades=pdt_state(engine, broker)
        if account.equity < to_decimal(settings.pdt_min_equity)
        else None,
    )
