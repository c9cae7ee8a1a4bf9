"""Prefect tasks of the daily trade pipeline: each wraps plain stages of ``stockflow.pipeline`` over all
symbols (coarse tasks: the server handles ~30 task runs/s). No task caches (every run reads the market
and the broker afresh) and none retries on its own: order submission is idempotent inside, and a blind
retry of a stage that talks to a broker is what reconciliation is for.

Tasks that send or cancel orders carry the tag :data:`TRADING_TAG`, so a Prefect tag concurrency limit
(``prefect concurrency-limit create stockflow-trading 1``) can serialize them across runs; the database
run lock (``stockflow.execution.lock.run_lock``) is what guarantees two runs never both trade.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from stockflow.db.base import utcnow
from stockflow.execution import await_orders, execute_orders, reconcile, start_of_run
from stockflow.execution.fills import ledger_fills
from stockflow.execution.pnl import broker_baseline
from stockflow.features import FEATURE_COLUMNS
from stockflow.logs import get_logger
from stockflow.ops.notify import emit_halted
from stockflow.ops.reports import report_url
from stockflow.pipeline.approval_stage import run_approval
from stockflow.pipeline.market import history_start, latest_prices, read_market
from stockflow.pipeline.model_choice import choose_model, model_importances, predict_for
from stockflow.pipeline.outcomes import held_quantities, log_plan, result_status
from stockflow.pipeline.plan import plan_orders, revalidate
from stockflow.pipeline.portfolio import (
    build_snapshot,
    equity_history,
    plot_equity_curve,
    save_snapshot,
)
from stockflow.pipeline.report import trade_artifacts
from stockflow.pipeline.session import check_session
from stockflow.pipeline.signals import SignalStatus, book_signals, feature_drivers
from stockflow.pipeline.trade_records import save_signals, set_signal_status, update_trade_run
from stockflow.portfolio import BookRules, Score, orders_for, target_book
from stockflow.risk.decisions import record_decisions
from stockflow.risk.state import get_state
from tasks.artifacts import publish_approval, publish_trade

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.brokers.base import Broker
    from stockflow.config import Settings
    from stockflow.execution.cycle import StartOfRun
    from stockflow.execution.reconcile import ReconcileReport
    from stockflow.execution.submit import ExecutionResult
    from stockflow.pipeline.market import MarketView
    from stockflow.pipeline.model_choice import ModelChoice
    from stockflow.pipeline.plan import Plan
    from stockflow.pipeline.session import SessionCheck
    from stockflow.pipeline.signals import Signal
    from stockflow.portfolio import BookOrder, TargetBook

TRADING_TAG = "stockflow-trading"


@dataclass(frozen=True)
class RunContext:
    """What every stage of one trade run shares once the session is known."""

    settings: Settings
    engine: Engine
    broker: Broker
    trade_run_id: int
    flow_run_id: str | None
    mode: str
    run_id: str  # stable per session: makes the client order ids (see ``pipeline.plan.run_key``)
    session_check: SessionCheck

    @property
    def session(self) -> dt.date:
        """The expected session."""
        return self.session_check.expected


@task(name="check-session", cache_policy=NO_CACHE)
def check_session_task(
    engine: Engine, symbols: list[str], *, source: str, as_of: dt.date | None
) -> SessionCheck:
    """The stale-session guard: which session the run expects and which symbols have it."""
    sc = check_session(engine, symbols, source=source, as_of=as_of, now=utcnow())
    (get_logger().info if sc.ok else get_logger().error)(sc.message)
    return sc


@task(name="read-market", cache_policy=NO_CACHE)
def market_task(ctx: RunContext, symbols: list[str]) -> MarketView:
    """Read the market once: the bars of the universe and the holdings from the earliest session any
    stage needs (the paper broker's last processed session; the features' history) to the session."""
    broker, session = ctx.broker, ctx.session
    start = history_start(ctx.settings, session, 260)
    last = getattr(broker, "last_session", None)  # every session since the paper broker's last one
    if isinstance(last, dt.date):
        start = min(start, last)
    held = [p.symbol for p in broker.positions()] + [o.symbol for o in broker.open_orders()]
    view = read_market(
        ctx.engine,
        sorted(set(symbols) | set(held)),
        session=session,
        start=start,
        latest=ctx.session_check.latest,
    )
    get_logger().info(f"market: {view.bars.height:,} bars of {len(view.symbols)} symbols from {start}")
    return view


@task(name="start-of-run", tags=[TRADING_TAG], cache_policy=NO_CACHE)
def start_of_run_task(ctx: RunContext, market: MarketView) -> StartOfRun:
    """Paper broker fills working orders at the new bars' open; reconcile; daily-loss breaker; stops."""
    last = getattr(ctx.broker, "last_session", None)
    start = last if isinstance(last, dt.date) else market.session - dt.timedelta(days=10)
    sor = start_of_run(
        ctx.engine,
        ctx.broker,
        ctx.settings.risk,
        run_id=ctx.run_id,
        session=market.session,
        bars=market.bars_since(start),
    )
    log = get_logger()
    log.info(f"trading state {sor.state.state.value}; breaker {'TRIPPED' if sor.breaker.tripped else 'ok'}")
    for s in sor.stops:
        log.info(f"stop {s.symbol}: {s.action} at {s.stop_price}")
    if sor.breaker.newly_tripped:  # Prefect automations tell a person (issue 11)
        emit_halted(reason=sor.state.breaker_detail, actor="daily-loss breaker")
    return sor


@task(name="choose-model", cache_policy=NO_CACHE)
def choose_model_task(settings: Settings, engine: Engine, *, trained_now: bool = False) -> ModelChoice:
    """The champion (or, opted in for demos, the best challenger), or why there is none."""
    choice = choose_model(settings, engine, trained_now=trained_now)
    (get_logger().info if choice.entry else get_logger().warning)(choice.message)
    return choice


@dataclass(frozen=True)
class BookStage:
    """The predictions' count, the target book, its orders and one signal per symbol."""

    predictions: int
    book: TargetBook
    orders: tuple[BookOrder, ...]
    signals: tuple[Signal, ...]


@task(name="target-book", cache_policy=NO_CACHE)
def book_task(ctx: RunContext, choice: ModelChoice, market: MarketView, sor: StartOfRun) -> BookStage:
    """Predictions of the chosen model (stored) -> top-k target book sized by the risk rules -> the
    orders that reach it (exits first) -> signals, with drivers for the symbols that get an order (the
    model's attributions on the feature rows predict scored: the features are built once per run)."""
    log, settings = get_logger(), ctx.settings
    preds, skipped, model, scored = predict_for(settings, ctx.engine, choice, market)
    for sym, why in sorted(skipped.items())[:20]:
        log.warning(f"no prediction for {sym}: {why}")
    if len(skipped) > 20:
        log.warning(f"no prediction for {len(skipped) - 20} more symbol(s)")
    rules = BookRules.from_settings(settings)
    if rules.k < settings.portfolio.top_k:
        log.info(f"top_k {settings.portfolio.top_k} capped at risk.max_open_positions = {rules.k}")
    held = {s: q for s, q in held_quantities(sor.positions).items() if q > 0}
    pending = sum(
        float(o.remaining_qty) * float(market.closes.get(o.symbol, 0))
        for o in sor.open_orders
        if o.is_open and o.side.value == "buy"
    )
    book = target_book(
        {p.symbol: Score(p.score, p.prob_outperform, p.expected_excess) for p in preds},
        held,
        market.prices(),
        equity=float(sor.account.equity),
        cash=float(min(sor.account.cash, sor.account.buying_power)),
        rules=rules,
        pending_buys=pending,
    )
    orders = orders_for(book, held)
    # The model that made the predictions explains them, on the very feature rows it scored (built
    # once, inside predict; a symbol it did not score, e.g. a skipped holding that leaves, has none).
    with_order = [o.symbol for o in orders]
    drivers = feature_drivers(
        scored.filter(pl.col("symbol").is_in(with_order)) if not scored.is_empty() else scored,
        list(getattr(model, "feature_names", FEATURE_COLUMNS)),
        model_importances(choice.entry),
        model=model,
    )
    signals = book_signals(book, preds, market.session, drivers)
    log.info(
        f"top {book.k}: enter {[ln.symbol for ln in book.of('enter')]}, exit "
        f"{[ln.symbol for ln in book.of('exit')]}, keep {[ln.symbol for ln in book.of('keep')]}"
    )
    return BookStage(len(preds), book, tuple(orders), tuple(signals))


@task(name="risk-check", cache_policy=NO_CACHE)
def risk_task(ctx: RunContext, stage: BookStage, sor: StartOfRun, market: MarketView) -> Plan:
    """Risk decides every order of the book (decisions stored with reason codes), the mode routes the
    approved ones; every signal is stored with its route and fate so far."""
    plan = plan_orders(
        stage.orders,
        stage.signals,
        stage.book,
        mode=ctx.mode,
        settings=ctx.settings,
        account=sor.account,
        positions=sor.positions,
        open_orders=sor.open_orders,
        state=sor.state,
        prices=market.closes,
        session_check=ctx.session_check,
        day_trades=sor.day_trades,
    )
    if plan.decisions:
        record_decisions(ctx.engine, ctx.run_id, list(plan.decisions), session=ctx.session)
    orders = {p.symbol: p.proposed for p in [*plan.auto, *plan.approval]}
    statuses = {r.symbol: (SignalStatus.REJECTED, r.reason_code, r.reason) for r in plan.refused}
    save_signals(ctx.engine, ctx.trade_run_id, plan.routed, orders, statuses)
    log_plan(plan)
    return plan


@task(name="execute-orders", tags=[TRADING_TAG], cache_policy=NO_CACHE)
def execute_task(ctx: RunContext, planned: Sequence[Any]) -> list[ExecutionResult]:
    """Send the orders idempotently (client order id written before the POST); wait for fills where the
    broker fills during the session; record each signal's fate."""
    if not planned:
        return []
    engine, broker, run_id, settings = ctx.engine, ctx.broker, ctx.run_id, ctx.settings
    results = execute_orders(
        engine,
        broker,
        [p.request for p in planned],
        run_id=run_id,
        session=ctx.session,
        pdt_min_equity=settings.risk.pdt_min_equity,
    )
    sent = [r.request.client_order_id for r in results if r.sent]
    if sent and settings.broker.kind == "alpaca" and settings.broker.fill_poll_s > 0:
        await_orders(engine, broker, sent, timeout_s=settings.broker.fill_poll_s, run_id=run_id)
    log = get_logger()
    for r in results:
        status, code, reason = result_status(r)
        set_signal_status(
            engine,
            ctx.trade_run_id,
            [r.request.symbol],
            status,
            reason_code=code,
            reason=reason,
            decided_by="broker",
        )
        log.info(f"{r.request.symbol} {r.request.side.value} {r.request.qty}: {r.outcome} {r.error or ''}")
    return results


@dataclass(frozen=True)
class ApprovalRound:
    """What the approval round did: the person's answer, what was sent, and what was not."""

    status: str  # decided / expired / refused
    message: str
    plan_hash: str
    results: tuple[ExecutionResult, ...]
    refused: tuple[Any, ...]


def approval_round(
    ctx: RunContext, plan: Plan, *, equity: float, sent_before: int, lock: Any, demo: bool = False
) -> ApprovalRound:
    """Pause for a person (in the flow itself: a pause cannot happen inside a task), reconcile, check
    the approved orders again with prices re-read (nothing else is), and send what still holds."""
    settings, engine, broker, session_check = ctx.settings, ctx.engine, ctx.broker, ctx.session_check
    clock_then = broker.clock().session
    update_trade_run(engine, ctx.trade_run_id, status="awaiting_approval")
    approval = run_approval(
        engine,
        plan.approval,
        trade_run_id=ctx.trade_run_id,
        flow_run_id=ctx.flow_run_id,
        equity=equity,
        timeout_s=settings.trading.approval_timeout_s,
        poll_s=settings.trading.approval_poll_s,
        run_label=f"{ctx.mode} mode, session {ctx.session}"
        + (" - DEMO: best challenger, not a champion" if demo else ""),
        show=publish_approval,
        book_url=report_url(settings),
    )
    lock.renew()
    refused = list(approval.refused)
    results: list[ExecutionResult] = []
    rec = reconcile_task(ctx)  # reconcile after every resume
    if approval.approved:
        symbols = [p.symbol for p in approval.approved]
        ok, late = revalidate(
            approval.approved,
            settings=settings,
            account=rec.account,
            positions=rec.positions,
            open_orders=rec.open_orders,
            state=get_state(engine),
            prices_now=latest_prices(engine, symbols, session_check.expected),
            clock_session_then=clock_then,
            clock_session_now=broker.clock().session,
            session_check=session_check,
            orders_sent=sent_before,
        )
        for r in late:
            set_signal_status(
                engine,
                ctx.trade_run_id,
                [r.symbol],
                SignalStatus.REJECTED,
                reason_code=r.reason_code,
                reason=r.reason,
                decided_by="revalidation",
            )
            get_logger().warning(f"approved but not sent: {r.symbol}: {r.reason}")
        refused += late
        results = execute_task(ctx, ok)
    return ApprovalRound(
        approval.status, approval.message, approval.plan_hash, tuple(results), tuple(refused)
    )


@task(name="reconcile", tags=[TRADING_TAG], cache_policy=NO_CACHE)
def reconcile_task(ctx: RunContext) -> ReconcileReport:
    """Reconcile account, positions and open orders with the broker (after a resume, and at the end)."""
    return reconcile(ctx.engine, ctx.broker, run_id=ctx.run_id)


@task(name="portfolio-snapshot", cache_policy=NO_CACHE)
def snapshot_task(ctx: RunContext) -> dict[str, Any]:
    """Snapshot account, positions and performance metrics for the session; draw the equity curve."""
    settings, engine, broker = ctx.settings, ctx.engine, ctx.broker
    account = broker.account()
    history = equity_history(engine, broker.name)
    base = broker_baseline(broker, account, history, ctx.session)  # the broker's figures, not initial_cash
    snap = build_snapshot(
        broker=broker.name,
        session=ctx.session,
        account=account,
        positions=broker.positions(),
        history=history,
        initial_cash=base.start_equity,
        fills=ledger_fills(engine, broker.name),  # applied by reconcile, read incrementally there
        prev_equity=base.prev_equity,
        flows=base.flows_today,
    )
    save_snapshot(engine, snap, trade_run_id=ctx.trade_run_id, flow_run_id=ctx.flow_run_id)
    page = plot_equity_curve(
        equity_history(engine, broker.name),
        settings.reports_dir / "equity",
        initial_cash=base.start_equity,
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
        "equity_curve": report_url(settings, page),
        "reports": report_url(settings),
    }


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_task(
    settings: Settings, engine: Engine, *, trade_run_id: int, summary: dict[str, Any]
) -> dict[str, str]:
    """Publish the run's artifacts under stable keys (see ``stockflow.pipeline.report``)."""
    return publish_trade(trade_artifacts(settings, engine, trade_run_id=trade_run_id, summary=summary))
