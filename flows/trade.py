"""The ``trade`` flow: the user's main scheduled job.

ingest -> validate -> session check -> start of run (paper broker fills at the new open, reconcile,
breaker, stops) -> model (train first when none was ever trained) -> features -> predict -> signals ->
risk -> execute what needs nobody -> approval (manual/hybrid: the run pauses for a person) -> reconcile
and re-validate -> execute the approved -> reconcile -> portfolio snapshot -> artifacts.

Everything runs under the database trading lock: a second run started meanwhile refuses at once and
says who holds the lock. The run ends in a state that names its outcome (``Completed``, ``NoModel``,
``Expired``, ``Refused``; ``Failed`` for stale data, a held lock or an error) with a message that
says why; its return value is the summary ``stockflow run`` prints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from stockflow.logs import get_logger
from tasks.trading import (
    check_session_task,
    choose_model_task,
    execute_task,
    predict_signals,
    publish_task,
    reconcile_task,
    risk_task,
    snapshot_task,
    start_of_run_task,
)


def _retrain(symbols: list[str], end: dt.date) -> str | None:
    """Train with the retrain flow (a subflow of this run) on bars up to ``end``; returns why it
    failed, or None."""
    from flows.retrain import retrain_flow

    try:
        retrain_flow(symbols=symbols, end=end)
    except Exception as err:  # the trade run goes on without a model and says why
        get_logger().error(f"training failed: {type(err).__name__}: {err}")
        return f"training failed: {type(err).__name__}: {err}"
    return None


Source = Literal["sample", "files", "alpaca", "yfinance"]


@flow(name="trade", retries=0, validate_parameters=True)
def trade_flow(
    mode: Literal["auto", "manual", "hybrid"] = "auto",
    symbols: list[str] | None = None,
    source: Source | None = None,
    as_of: dt.date | None = None,
) -> State[Any]:
    """Run the daily trade pipeline once (see the module docstring). ``mode``: auto trades every signal
    that passes risk above ``trading.auto_threshold``; manual asks a person for every order; hybrid
    trades above the auto threshold and asks between ``approval_threshold`` and it. ``symbols`` and
    ``source`` default to the settings; ``as_of`` pins the expected session (historical sources)."""
    from stockflow.config import load_settings
    from stockflow.db import get_engine, upgrade
    from stockflow.execution import TradingLockedError, run_lock
    from stockflow.pipeline.daily import broker_for, resolve_symbols
    from stockflow.pipeline.pause import grace_seconds
    from stockflow.pipeline.store import abandon_stale_approvals, start_trade_run, update_trade_run

    log = get_logger()
    base = load_settings()
    syms = resolve_symbols(base, symbols)
    src = source or base.data.source
    settings = base.model_copy(update={"data": base.data.model_copy(update={"symbols": syms, "source": src})})
    engine = get_engine(settings.db_url)
    upgrade(engine)
    fr_id = flow_run.get_id()
    abandoned = abandon_stale_approvals(engine)
    if abandoned:
        log.warning(f"closed {len(abandoned)} approval request(s) whose run died while waiting: {abandoned}")
    trade_run_id = start_trade_run(
        engine, flow_run_id=fr_id, mode=mode, signal_source=settings.trading.signal_source
    )
    summary: dict[str, Any] = {
        "mode": mode,
        "flow_run_id": fr_id,
        "trade_run_id": trade_run_id,
        "symbols": syms,
    }
    lease = max(
        1800.0, settings.trading.approval_timeout_s + grace_seconds(settings.trading.approval_timeout_s) + 900
    )
    try:
        with run_lock(engine, f"trade flow run {fr_id or 'local'}", lease_s=lease) as lock:
            state = _run(
                settings,
                engine,
                broker_for(settings, engine),
                summary,
                mode=mode,
                source=src,
                as_of=as_of,
                lock=lock,
            )
    except TradingLockedError as err:
        msg = f"not trading: {err}. Two runs must not trade at once; this one did nothing."
        summary.update(outcome="Locked", message=msg)
        update_trade_run(engine, trade_run_id, status="refused", message=msg, summary=summary)
        log.error(msg)
        return Failed(message=msg, data=summary)
    except BaseException as err:
        from stockflow.pipeline.signals import SignalStatus
        from stockflow.pipeline.store import load_signals, set_signal_status

        pending = [
            s.symbol for s in load_signals(engine, trade_run_id) if s.status in ("pending", "approved")
        ]
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
        raise
    return state


def _finish(
    engine: Any, settings: Any, summary: dict[str, Any], *, status: str, outcome: str, message: str
) -> None:
    from stockflow.pipeline.store import update_trade_run

    summary.update(outcome=outcome, message=message)
    update_trade_run(engine, summary["trade_run_id"], status=status, message=message, summary=summary)
    try:
        publish_task(settings, engine, trade_run_id=summary["trade_run_id"], summary=summary)
    except Exception as err:  # artifacts are a view; the run's result is in the database already
        get_logger().warning(f"could not publish artifacts: {type(err).__name__}: {err}")


def _snapshot(settings: Any, engine: Any, broker: Any, summary: dict[str, Any], session: dt.date) -> None:
    from stockflow.pipeline.report import reports_url

    snap = snapshot_task(
        settings,
        engine,
        broker,
        session=session,
        trade_run_id=summary["trade_run_id"],
        flow_run_id=summary["flow_run_id"],
    )
    page = snap.pop("equity_page")
    summary.update(snap)
    summary["equity_curve"] = reports_url(settings, page)
    summary["reports"] = reports_url(settings)


def _run(
    settings: Any,
    engine: Any,
    broker: Any,
    summary: dict[str, Any],
    *,
    mode: str,
    source: Source,
    as_of: dt.date | None,
    lock: Any,
) -> State[Any]:
    from stockflow.pipeline.approval_stage import run_approval
    from stockflow.pipeline.daily import (
        held_quantities,
        latest_prices,
        never_trained,
        order_rows_for_report,
        revalidate,
        run_key,
    )
    from stockflow.pipeline.signals import SignalStatus
    from stockflow.pipeline.store import load_signals, set_signal_status, update_trade_run
    from stockflow.risk.state import get_state

    log = get_logger()
    syms: list[str] = summary["symbols"]
    fr_id = summary["flow_run_id"]
    trade_run_id = summary["trade_run_id"]

    from flows.ingest import ingest_flow

    # The ingest flow as a subflow: fetch, Great Expectations validation, store and quarantine, with its
    # own artifacts (summary, Data Docs link) in the UI.
    report = ingest_flow(source=source, symbols=syms)
    summary.update(
        rows_ingested=report.rows_stored, rows_new=report.rows_new, symbols_failed=report.symbols_failed
    )
    sc = check_session_task(engine, syms, source=source, as_of=as_of)
    summary.update(expected_session=sc.expected.isoformat(), stale=sc.stale)
    update_trade_run(engine, trade_run_id, expected_session=sc.expected if sc.ok else None)
    if not sc.ok:
        _finish(engine, settings, summary, status="refused", outcome="Stale", message=sc.message)
        return Failed(message=sc.message, data=summary)
    key = run_key(sc.expected)
    sor = start_of_run_task(settings, engine, broker, symbols=syms, session=sc.expected, run_id=key)
    summary["stops"] = [
        {
            "symbol": s.symbol,
            "qty": float(s.qty),
            "stop_price": float(s.stop_price),
            "previous_stop": None if s.previous_stop is None else float(s.previous_stop),
            "action": s.action,
        }
        for s in sor.stops
    ]
    summary["trading_state"] = sor.state.state.value
    if sor.breaker.newly_tripped:  # Prefect automations tell a person (issue 11)
        from stockflow.ops.notify import emit_halted

        emit_halted(reason=sor.state.breaker_detail, actor="daily-loss breaker")

    choice = choose_model_task(settings, engine)
    if choice.entry is None and settings.trading.train_if_no_model and never_trained(engine):
        log.info("no model was ever trained: training first")
        failure = _retrain(syms, sc.expected)
        choice = choose_model_task(settings, engine, trained_now=True)
        if failure and choice.entry is None:
            choice = dataclasses.replace(choice, message=f"{failure}. {choice.message}")
    summary.update(model_version=choice.entry.version if choice.entry else None, signal_source=choice.source)
    update_trade_run(engine, trade_run_id, model_version=summary["model_version"])
    if choice.entry is None:
        reconcile_task(engine, broker, run_id=key)
        _snapshot(settings, engine, broker, summary, sc.expected)
        summary.update(orders_sent=[], orders_refused=[], predictions=0, signals={})
        _finish(engine, settings, summary, status="completed", outcome="NoModel", message=choice.message)
        return Completed(name="NoModel", message=choice.message, data=summary)

    n_preds, signals = predict_signals(
        settings, engine, choice, symbols=syms, session=sc.expected, held=held_quantities(sor.positions)
    )
    summary["predictions"] = n_preds
    counts: dict[str, int] = {}
    for s in signals:
        counts[s.action.value] = counts.get(s.action.value, 0) + 1
    summary["signals"] = counts
    plan = risk_task(
        settings,
        engine,
        trade_run_id=trade_run_id,
        run_id=key,
        mode=mode,
        signals=signals,
        sor=sor,
        session_check=sc,
    )
    results = list(
        execute_task(
            settings,
            engine,
            broker,
            trade_run_id=trade_run_id,
            planned=plan.auto,
            run_id=key,
            session=sc.expected,
        )
    )
    extra_refused: list[Any] = []
    outcome, name, status = "Completed", None, "completed"
    if plan.approval:
        clock_then = broker.clock().session
        update_trade_run(engine, trade_run_id, status="awaiting_approval")
        approval = run_approval(
            engine,
            plan.approval,
            trade_run_id=trade_run_id,
            flow_run_id=fr_id,
            equity=float(sor.account.equity),
            timeout_s=settings.trading.approval_timeout_s,
            poll_s=settings.trading.approval_poll_s,
            run_label=f"{mode} mode, session {sc.expected}"
            + (" - DEMO: best challenger, not a champion" if choice.source == "best_challenger" else ""),
        )
        lock.renew()
        summary["approval"] = {
            "status": approval.status,
            "message": approval.message,
            "plan_hash": approval.plan_hash,
        }
        extra_refused += approval.refused
        rec = reconcile_task(engine, broker, run_id=key)  # reconcile after every resume
        if approval.approved:
            ok, refused = revalidate(
                approval.approved,
                settings=settings,
                account=rec.account,
                positions=rec.positions,
                open_orders=rec.open_orders,
                state=get_state(engine),
                prices_now=latest_prices(engine, syms, sc.expected),
                clock_session_then=clock_then,
                clock_session_now=broker.clock().session,
                session_check=sc,
                orders_sent=sum(1 for r in results if r.sent),
            )
            for r in refused:
                set_signal_status(
                    engine,
                    trade_run_id,
                    [r.symbol],
                    SignalStatus.REJECTED,
                    reason_code=r.reason_code,
                    reason=r.reason,
                    decided_by="revalidation",
                )
                log.warning(f"approved but not sent: {r.symbol}: {r.reason}")
            extra_refused += refused
            results += execute_task(
                settings,
                engine,
                broker,
                trade_run_id=trade_run_id,
                planned=ok,
                run_id=key,
                session=sc.expected,
            )
        if approval.status == "expired":
            outcome, name, status = "Expired", "Expired", "expired"
        elif approval.status == "refused":
            outcome, name, status = "Refused", "Refused", "refused"
    reconcile_task(engine, broker, run_id=key)
    _snapshot(settings, engine, broker, summary, sc.expected)
    sent, refused_rows = order_rows_for_report(plan, results, extra_refused)
    summary.update(orders_sent=sent, orders_refused=refused_rows)
    summary["signal_details"] = [
        {"symbol": r.symbol, "action": r.action, "probability": round(r.probability, 4),
         "confidence": round(r.confidence, 4), "route": r.route, "status": r.status,
         "reason_code": r.reason_code}
        for r in load_signals(engine, trade_run_id)
    ]  # fmt: skip
    message = (
        f"{len(sent)} order(s) sent, {len(refused_rows)} refused; equity ${summary['equity']:,.2f}, "
        f"daily P&L ${summary['daily_pnl']:+,.2f}"
    )
    if signals and all(s.action.value == "hold" for s in signals):
        message = (
            f"no order: all {len(signals)} signals are HOLD (the model expects no rise for the flat symbols "
            f"and no held position to exit); equity ${summary['equity']:,.2f}, "
            f"daily P&L ${summary['daily_pnl']:+,.2f}"
        )
    if choice.source != "champion":
        message += f"; {choice.message}"
    if "approval" in summary:
        message = f"{summary['approval']['message']}. {message}"
    _finish(engine, settings, summary, status=status, outcome=outcome, message=message)
    if name is not None:
        return Completed(name=name, message=message, data=summary)
    return Completed(message=message, data=summary)
