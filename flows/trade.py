"""The ``trade`` flow: the user's main scheduled job, as wiring (the stages live in ``tasks/trading.py``
over the plain functions of ``stockflow.pipeline`` and ``stockflow.portfolio``).

ingest (subflow) -> session check -> read the market once -> start of run (paper fills at the new open,
reconcile, breaker, stops) -> model (train first when none was ever trained) -> predict -> top-k target
book sized by the risk rules -> orders (exits first) -> risk -> mode -> send what needs nobody ->
approval (manual/hybrid: the run pauses for a person; prices re-read, every limit re-checked) ->
reconcile -> portfolio snapshot -> artifacts.

Everything runs under the database trading lock: a second run refuses at once and says who holds it.
The run ends in a state that names its outcome (``Completed``, ``NoModel``, ``Expired``, ``Refused``;
``Failed`` for stale data, a held lock or an error) with a message that says why; its return value is
the :class:`~stockflow.pipeline.outcomes.TradeSummary` as plain data (what ``stockflow run`` prints).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

import flows  # noqa: F401  (one line for expected errors, also when Prefect loads this file by path)
from flows.ingest import ingest_flow
from flows.retrain import retrain_flow
from stockflow.brokers import make_broker
from stockflow.choices import SourceName, TradeMode
from stockflow.config import load_settings
from stockflow.db import get_engine, upgrade
from stockflow.execution import TradingLockedError, run_lock
from stockflow.logs import get_logger
from stockflow.pipeline.model_choice import choose_or_train
from stockflow.pipeline.outcomes import TradeSummary, final_summary, outcome_of, run_failed, stop_row
from stockflow.pipeline.pause import grace_seconds
from stockflow.pipeline.plan import run_key
from stockflow.pipeline.session import resolve_symbols, stored_symbols
from stockflow.pipeline.trade_records import (
    abandon_stale_approvals,
    load_signals,
    start_trade_run,
    update_trade_run,
)
from tasks import trading as t


@flow(name="trade", retries=0, validate_parameters=True)
def trade_flow(
    mode: TradeMode = "auto",
    symbols: list[str] | None = None,
    source: SourceName | None = None,
    as_of: dt.date | None = None,
) -> State[Any]:
    """Run the daily trade pipeline once (see the module docstring). ``mode``: auto sends the book's
    orders; manual asks a person for every order; hybrid asks for orders whose P(outperform) is in the
    approval band or whose notional is large. ``symbols`` (empty: every symbol the source holds) and
    ``source`` default to the settings; ``as_of`` pins the expected session (historical sources)."""
    base = load_settings()
    syms, src = resolve_symbols(base, symbols), source or base.data.source
    settings = base.model_copy(update={"data": base.data.model_copy(update={"symbols": syms, "source": src})})
    engine = get_engine(settings.db_url)
    upgrade(engine)
    if abandoned := abandon_stale_approvals(engine):
        get_logger().warning(f"closed {len(abandoned)} approval request(s) whose run died: {abandoned}")
    fr_id = flow_run.get_id()
    run_id = start_trade_run(
        engine, flow_run_id=fr_id, mode=mode, signal_source=settings.trading.signal_source
    )
    summary = TradeSummary(mode=mode, trade_run_id=run_id, flow_run_id=fr_id, symbols=tuple(syms))
    timeout = settings.trading.approval_timeout_s
    try:
        with run_lock(
            engine,
            f"trade flow run {fr_id or 'local'}",
            lease_s=max(1800.0, timeout + grace_seconds(timeout) + 900),
        ) as lock:
            return _run(settings, engine, summary, mode=mode, source=src, as_of=as_of, lock=lock)
    except TradingLockedError as err:
        msg = f"not trading: {err}. Two runs must not trade at once; this one did nothing."
        _finish(settings, engine, summary.with_(outcome="Locked", message=msg), status="refused")
        get_logger().error(msg)
        return Failed(message=msg, data=summary.with_(outcome="Locked", message=msg).as_dict())
    except BaseException as err:
        run_failed(engine, run_id, err)
        raise


def _finish(settings: Any, engine: Any, summary: TradeSummary, *, status: str) -> dict[str, Any]:
    data = summary.as_dict()
    update_trade_run(engine, summary.trade_run_id, status=status, message=summary.message, summary=data)
    try:
        t.publish_task(settings, engine, trade_run_id=summary.trade_run_id, summary=data)
    except Exception as err:  # artifacts are a view; the run's result is in the database already
        get_logger().warning(f"could not publish artifacts: {type(err).__name__}: {err}")
    return data


def _run(
    settings: Any, engine: Any, s: TradeSummary, *, mode: str, source: SourceName, as_of: Any, lock: Any
) -> State[Any]:
    # The ingest flow as a subflow: fetch, Great Expectations validation, store and quarantine.
    report = ingest_flow(source=source, symbols=list(s.symbols) or None)
    syms = list(s.symbols) or stored_symbols(engine, report.symbols_ok)
    s = s.with_(symbols=tuple(syms), rows_ingested=report.rows_stored, rows_new=report.rows_new,
                symbols_failed=dict(report.symbols_failed))  # fmt: skip
    sc = t.check_session_task(engine, syms, source=source, as_of=as_of)
    s = s.with_(expected_session=sc.expected.isoformat(), stale=dict(sc.stale))
    update_trade_run(engine, s.trade_run_id, expected_session=sc.expected if sc.ok else None)
    if not sc.ok:
        _finish(settings, engine, s := s.with_(outcome="Stale", message=sc.message), status="refused")
        return Failed(message=sc.message, data=s.as_dict())
    ctx = t.RunContext(settings, engine, _broker(settings, engine), s.trade_run_id, s.flow_run_id, mode,
                       run_key(sc.expected), sc)  # fmt: skip
    market = t.market_task(ctx, syms)  # the market, read once
    sor = t.start_of_run_task(ctx, market)
    choice = choose_or_train(settings, engine, syms, sc.expected, choose=t.choose_model_task, train=_retrain)
    version = choice.entry.version if choice.entry else None
    s = s.with_(stops=tuple(stop_row(x) for x in sor.stops), trading_state=sor.state.state.value,
                model_version=version, signal_source=choice.source)  # fmt: skip
    update_trade_run(engine, s.trade_run_id, model_version=s.model_version)
    if choice.entry is None:
        t.reconcile_task(ctx)
        s = s.with_(outcome="NoModel", message=choice.message, snapshot=t.snapshot_task(ctx))
        _finish(settings, engine, s, status="completed")
        return Completed(name="NoModel", message=choice.message, data=s.as_dict())
    stage = t.book_task(ctx, choice, market, sor)
    plan = t.risk_task(ctx, stage, sor, market)
    results = t.execute_task(ctx, plan.auto)
    approval = None
    if plan.approval:
        sent = sum(1 for r in results if r.sent)
        approval = t.approval_round(
            ctx,
            plan,
            equity=float(sor.account.equity),
            sent_before=sent,
            lock=lock,
            demo=choice.source == "best_challenger",
        )
    t.reconcile_task(ctx)
    snap, rows = t.snapshot_task(ctx), load_signals(engine, s.trade_run_id)
    s = final_summary(s, stage=stage, plan=plan, results=results, approval=approval, choice=choice,
                      snapshot=snap, signal_rows=rows)  # fmt: skip
    outcome, name, status = outcome_of(approval.status if approval else None)
    _finish(settings, engine, s := s.with_(outcome=outcome), status=status)
    if name is not None:
        return Completed(name=name, message=s.message, data=s.as_dict())
    return Completed(message=s.message, data=s.as_dict())


def _broker(settings: Any, engine: Any) -> Any:
    return make_broker(settings, engine)


def _retrain(symbols: list[str], end: dt.date) -> str | None:
    """Train with the retrain flow (a subflow of this run) on bars up to ``end``; returns why it
    failed, or None."""
    try:
        retrain_flow(symbols=symbols, end=end)
    except Exception as err:  # the trade run goes on without a model and says why
        get_logger().error(f"training failed: {type(err).__name__}: {err}")
        return f"training failed: {type(err).__name__}: {err}"
    return None
