"""What HALTED means at the broker: open orders cancelled (cancels always go through), protective stops
kept, and, when ``risk.flatten_on_halt`` is set, every position flattened with a market order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine

from stockflow.brokers.base import Broker
from stockflow.config.sections import RiskSettings
from stockflow.domain.orders import Order, OrderRequest, OrderType, Side
from stockflow.errors import RejectedError, RetryableError
from stockflow.execution._log import trading_logger
from stockflow.execution.intents import intent_order_id
from stockflow.execution.submit import ExecutionResult, cancel_order, submit_order


@dataclass
class HaltReport:
    """Orders cancelled and flattening orders sent while enforcing HALTED."""

    cancelled: list[Order] = field(default_factory=list)
    kept_stops: list[Order] = field(default_factory=list)
    flattened: list[ExecutionResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def cancel_open_orders(
    engine: Engine, broker: Broker, *, run_id: str | None = None, keep_protective_stops: bool = True
) -> HaltReport:
    """Cancel every open order at the broker (ours and outside ones), except resting sell stops when
    ``keep_protective_stops`` (they only reduce risk)."""
    report = HaltReport()
    for o in broker.open_orders():
        if keep_protective_stops and o.type is OrderType.STOP and o.side is Side.SELL:
            report.kept_stops.append(o)
            continue
        try:
            done = cancel_order(engine, broker, o.client_order_id, run_id=run_id)
            report.cancelled.append(done or o)
        except (RejectedError, RetryableError) as err:
            report.errors.append(f"cancel {o.client_order_id}: {err}")
    return report


def enforce_halt(
    engine: Engine,
    broker: Broker,
    settings: RiskSettings,
    *,
    run_id: str,
    session: dt.date,
    flatten: bool | None = None,
) -> HaltReport:
    """Cancel open orders (keeping protective stops unless flattening) and, with ``flatten`` (default
    ``settings.flatten_on_halt``), sell every long position at market (allowed while HALTED)."""
    log = trading_logger("stockflow.execution")
    do_flatten = settings.flatten_on_halt if flatten is None else flatten
    report = cancel_open_orders(engine, broker, run_id=run_id, keep_protective_stops=not do_flatten)
    if do_flatten:
        for p in broker.positions():
            if p.qty <= 0:
                continue  # shorts are never opened by stockflow
            req = OrderRequest(
                client_order_id=intent_order_id(
                    engine,
                    run_id=run_id,
                    session=session,
                    symbol=p.symbol,
                    side=Side.SELL,
                    purpose="flatten",
                    content=f"{p.qty}",
                ),
                symbol=p.symbol,
                side=Side.SELL,
                qty=p.qty,
                type=OrderType.MARKET,
                reference_price=p.current_price,
                reason="flatten on halt",
                intent="exit",
            )
            report.flattened.append(
                submit_order(engine, broker, req, run_id=run_id, session=session, allow_when_halted=True)
            )
    log.warning(
        "HALTED: cancelled %d orders, kept %d stops, sent %d flattening orders",
        len(report.cancelled),
        len(report.kept_stops),
        len(report.flattened),
    )
    return report
