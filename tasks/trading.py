"""Prefect tasks of the daily trade pipeline: each wraps one plain stage of ``stockflow.pipeline.daily``
over all symbols (coarse tasks: the server handles ~30 task runs/s). No task caches (every run reads the
market and the broker afresh) and none retries on its own: order submission is idempotent inside, and
a blind retry of a stage that talks to a broker is what reconciliation is for.

Tasks that send or cancel orders carry the tag :data:`TRADING_TAG`, so a Prefect tag concurrency limit
(``prefect concurrency-limit create stockflow-trading 1``) can serialize them across runs; the database
run lock (``stockflow.execution.lock.run_lock``) is what guarantees two runs never both trade.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from stockflow.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.brokers.base import Broker
    from stockflow.config import Settings
    from stockflow.execution.cycle import StartOfRun
    from stockflow.execution.reconcile import ReconcileReport
    from stockflow.execution.submit import ExecutionResult
    from stockflow.pipeline.daily import ModelChoice, Plan, SessionCheck
    from stockflow.pipeline.signals import Signal

TRADING_TAG = "stockflow-trading"


@task(name="check-session", cache_policy=NO_CACHE)
def check_session_task(
    engine: Engine, symbols: list[str], *, source: str, as_of: dt.date | None
) -> SessionCheck:
    """The stale-session guard: which session the run expects and which symbols have it."""
    from stockflow.db.base import utcnow
    from stockflow.pipeline.daily import check_session

    sc = check_session(engine, symbols, source=source, as_of=as_of, now=utcnow())
    (get_logger().info if sc.ok else get_logger().error)(sc.message)
    return sc


@task(name="start-of-run", tags=[TRADING_TAG], cache_policy=NO_CACHE)
def start_of_run_task(
    settings: Settings, engine: Engine, broker: Broker, *, symbols: list[str], session: dt.date, run_id: str
) -> StartOfRun:
    """Paper broker fills working orders at the new bars' open; reconcile; daily-loss breaker; stops."""
    from stockflow.execution import start_of_run
    from stockflow.store.bars import load_bars

    last = getattr(broker, "last_session", None)
    # Every session since the paper broker's last one, so that no bar is skipped.
    start = last if isinstance(last, dt.date) else session - dt.timedelta(days=10)
    held = [p.symbol for p in broker.positions()]
    bars = load_bars(engine, sorted(set(symbols) | set(held)), start=start, end=session)
    sor = start_of_run(engine, broker, settings.risk, run_id=run_id, session=session, bars=bars)
    log = get_logger()
    log.info(f"trading state {sor.state.state.value}; breaker {'TRIPPED' if sor.breaker.tripped else 'ok'}")
    for s in sor.stops:
        log.info(f"stop {s.symbol}: {s.action} at {s.stop_price}")
    return sor


@task(name="choose-model", cache_policy=NO_CACHE)
def choose_model_task(settings: Settings, engine: Engine, *, trained_now: bool = False) -> ModelChoice:
    """The champion (or, opted in for demos, the best challenger), or why there is none."""
    from stockflow.pipeline.daily import choose_model

    choice = choose_model(settings, engine, trained_now=trained_now)
    (get_logger().info if choice.entry else get_logger().warning)(choice.message)
    return choice


def _loaded_model(settings: Settings, engine: Engine, choice: ModelChoice) -> Any:
    """The chosen model, loaded, to explain its own predictions (None when it cannot be loaded)."""
    if choice.entry is None:
        return None
    from stockflow.registry import load_version

    try:
        return load_version(settings, engine, choice.entry.version)[1]
    except Exception as err:
        get_logger().warning(f"drivers: could not load {choice.entry.version} ({err}); z-scores instead")
        return None


@task(name="predict-signals", cache_policy=NO_CACHE)
def predict_signals(
    settings: Settings,
    engine: Engine,
    choice: ModelChoice,
    *,
    symbols: list[str],
    session: dt.date,
    held: dict[str, float],
) -> tuple[int, list[Signal]]:
    """Features -> predictions of the chosen model (stored) -> signals with their drivers."""
    from stockflow.pipeline.daily import feature_frame, model_importances, predict_for
    from stockflow.pipeline.signals import feature_drivers, make_signals

    preds, skipped = predict_for(settings, engine, choice, symbols, session)
    for sym, why in skipped.items():
        get_logger().warning(f"no prediction for {sym}: {why}")
    frame = feature_frame(settings, engine, symbols, session)
    from stockflow.features import FEATURE_COLUMNS

    drivers = feature_drivers(
        frame, FEATURE_COLUMNS, model_importances(choice.entry), model=_loaded_model(settings, engine, choice)
    )
    signals = make_signals(preds, held, settings.trading, drivers)
    log = get_logger()
    for s in signals:
        log.info(f"{s.symbol} {s.session}: {s.explain()}")
    return len(preds), signals


@task(name="risk-check", cache_policy=NO_CACHE)
def risk_task(
    settings: Settings,
    engine: Engine,
    *,
    trade_run_id: int,
    run_id: str,
    mode: str,
    signals: list[Signal],
    sor: StartOfRun,
    session_check: SessionCheck,
) -> Plan:
    """Route the signals by mode, size and check every order (risk decisions stored with reason
    codes), and store every signal with its route and fate so far."""
    from stockflow.pipeline.daily import latest_prices, log_plan, plan_orders
    from stockflow.pipeline.modes import route_signals
    from stockflow.pipeline.signals import SignalStatus
    from stockflow.pipeline.store import save_signals
    from stockflow.risk.decisions import record_decisions

    routed = route_signals(signals, mode, settings.trading)
    prices = latest_prices(engine, [s.symbol for s in signals], session_check.expected)
    plan = plan_orders(
        routed,
        settings=settings,
        account=sor.account,
        positions=sor.positions,
        open_orders=sor.open_orders,
        state=sor.state,
        prices=prices,
        session_check=session_check,
    )
    if plan.decisions:
        record_decisions(engine, run_id, plan.decisions, session=session_check.expected)
    orders = {p.symbol: p.proposed for p in [*plan.auto, *plan.approval]}
    statuses = {r.symbol: (SignalStatus.REJECTED, r.reason_code, r.reason) for r in plan.refused}
    save_signals(engine, trade_run_id, routed, orders, statuses)
    log_plan(plan)
    return plan


@task(name="execute-orders", tags=[TRADING_TAG], cache_policy=NO_CACHE)
def execute_task(
    settings: Settings,
    engine: Engine,
    broker: Broker,
    *,
    trade_run_id: int,
    planned: Sequence[Any],
    run_id: str,
    session: dt.date,
) -> list[ExecutionResult]:
    """Send the orders idempotently (client order id written before the POST); wait for fills where the
    broker fills during the session; record each signal's fate."""
    from stockflow.execution import await_orders, execute_orders
    from stockflow.pipeline.daily import result_status
    from stockflow.pipeline.store import set_signal_status

    if not planned:
        return []
    results = execute_orders(engine, broker, [p.request for p in planned], run_id=run_id, session=session)
    sent = [r.request.client_order_id for r in results if r.sent]
    if sent and settings.broker.kind == "alpaca" and settings.broker.fill_poll_s > 0:
        await_orders(engine, broker, sent, timeout_s=settings.broker.fill_poll_s, run_id=run_id)
    log = get_logger()
    for r in results:
        status, code, reason = result_status(r)
        set_signal_status(
            engine,
            trade_run_id,
            [r.request.symbol],
            status,
            reason_code=code,
            reason=reason,
            decided_by="broker",
        )
        log.info(f"{r.request.symbol} {r.request.side.value} {r.request.qty}: {r.outcome} {r.error or ''}")
    return results


@task(name="reconcile", tags=[TRADING_TAG], cache_policy=NO_CACHE)
def reconcile_task(engine: Engine, broker: Broker, *, run_id: str) -> ReconcileReport:
    """Reconcile account, positions and open orders with the broker (after a resume, and at the end)."""
    from stockflow.execution import reconcile

    return reconcile(engine, broker, run_id=run_id)


@task(name="portfolio-snapshot", cache_policy=NO_CACHE)
def snapshot_task(
    settings: Settings,
    engine: Engine,
    broker: Broker,
    *,
    session: dt.date,
    trade_run_id: int,
    flow_run_id: str | None,
) -> dict[str, Any]:
    """Snapshot account, positions and performance metrics for the session; draw the equity curve."""
    from stockflow.pipeline.portfolio import (
        build_snapshot,
        equity_history,
        plot_equity_curve,
        save_snapshot,
    )

    snap = build_snapshot(
        broker=broker.name,
        session=session,
        account=broker.account(),
        positions=broker.positions(),
        history=equity_history(engine, broker.name),
        initial_cash=settings.broker.initial_cash,
        fills=broker.fills(),
    )
    save_snapshot(engine, snap, trade_run_id=trade_run_id, flow_run_id=flow_run_id)
    page = plot_equity_curve(
        equity_history(engine, broker.name),
        settings.reports_dir / "equity",
        initial_cash=settings.broker.initial_cash,
    )
    perf = snap.performance
    return {
        "equity": snap.equity,
        "cash": snap.cash,
        "positions_value": snap.positions_value,
        "exposure": snap.exposure,
        "daily_pnl": snap.daily_pnl,
        "daily_return": snap.daily_return,
        "positions": list(snap.positions),
        "total_return": perf.total_return,
        "sharpe": perf.sharpe,
        "max_drawdown": perf.max_drawdown,
        "win_rate": perf.win_rate,
        "n_round_trips": perf.n_round_trips,
        "equity_page": str(page),
    }


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_task(
    settings: Settings, engine: Engine, *, trade_run_id: int, summary: dict[str, Any]
) -> dict[str, str]:
    """Publish the run's artifacts under stable keys (see ``stockflow.pipeline.report``)."""
    from stockflow.pipeline.report import publish_artifacts

    return publish_artifacts(settings, engine, trade_run_id=trade_run_id, summary=summary)
