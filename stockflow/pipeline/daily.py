"""The stages of the daily trade pipeline as plain functions (the Prefect flow ``flows/trade.py`` wires
them; ``tasks/trading.py`` wraps them as coarse tasks):

ingest -> validate (``stockflow.ingest.run_ingest``) -> session check -> model -> features -> predict ->
start of run (paper broker fills at the next open, reconcile, breaker, stops) -> signals -> risk ->
execute the orders that need nobody -> approval (``stockflow.pipeline.approval_stage``) -> re-validate ->
execute the approved -> reconcile -> portfolio snapshot.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine

from stockflow.brokers.base import Broker
from stockflow.brokers.ids import client_order_id
from stockflow.domain.market import normalize_symbol
from stockflow.domain.orders import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TradingState,
    to_decimal,
)
from stockflow.errors import ConfigError, DataError
from stockflow.logs import get_logger
from stockflow.pipeline.approval import ProposedOrder
from stockflow.pipeline.modes import Route, Routed
from stockflow.pipeline.signals import Action, SignalStatus
from stockflow.risk.limits import Decision, MarketContext, check_orders
from stockflow.risk.sizing import position_size
from stockflow.risk.state import StateInfo
from stockflow.risk.stops import initial_stop
from stockflow.store.bars import latest_sessions, load_bars

if TYPE_CHECKING:
    from stockflow.config import Settings
    from stockflow.execution.submit import ExecutionResult
    from stockflow.registry import ModelEntry

HISTORICAL_SOURCES = ("sample", "files")


# -- universe and session ---------------------------------------------------------------------------


def resolve_symbols(settings: Settings, symbols: Sequence[str] | str | None) -> list[str]:
    """The run's universe: ``symbols`` (list or comma-separated) or the settings' universe, normalized;
    a malformed symbol raises :class:`DataError` naming it."""
    if isinstance(symbols, str):
        symbols = [s for s in symbols.split(",") if s.strip()]
    raw = list(symbols) if symbols else list(settings.data.symbols)
    out: list[str] = []
    for s in raw:
        sym = normalize_symbol(s)
        if sym not in out:
            out.append(sym)
    if not out:
        raise ConfigError("no symbols to trade: give --symbols or set data.symbols")
    return out


@dataclass(frozen=True)
class SessionCheck:
    """Which session the run expects and which symbols have it as their latest bar."""

    expected: dt.date
    latest: dict[str, dt.date]
    fresh: tuple[str, ...]
    stale: dict[str, str]  # symbol -> why
    ok: bool
    message: str


def _calendar(start: dt.date) -> Any:
    import exchange_calendars as xcals

    return xcals.get_calendar("XNYS", start=str(start - dt.timedelta(days=30)))


def last_session_on_or_before(day: dt.date) -> dt.date:
    """The last XNYS session on or before ``day``."""
    import pandas as pd

    cal = _calendar(day)
    return cal.date_to_session(pd.Timestamp(day), direction="previous").date()  # type: ignore[no-any-return]


def last_completed_session(now: dt.datetime) -> dt.date:
    """The last XNYS session whose close is before ``now`` (what a live source should have)."""
    import pandas as pd

    cal = _calendar(now.date() - dt.timedelta(days=10))
    return cal.minute_to_past_session(pd.Timestamp(now)).date()  # type: ignore[no-any-return]


def latest_sessions_until(engine: Engine, symbols: Sequence[str], end: dt.date | None) -> dict[str, dt.date]:
    """The last stored session per symbol, on or before ``end`` when given (a replay of a historical
    source as of that day reads nothing after it)."""
    if end is None:
        return latest_sessions(engine, symbols)
    from sqlalchemy import func, select

    from stockflow.db.models_data import BarRow

    q = (
        select(BarRow.symbol, func.max(BarRow.session))
        .where(BarRow.symbol.in_(list(symbols)), BarRow.session <= end, BarRow.timeframe == "1Day")
        .group_by(BarRow.symbol)
    )
    with engine.connect() as conn:
        return {sym: d for sym, d in conn.execute(q)}


def check_session(
    engine: Engine,
    symbols: Sequence[str],
    *,
    source: str,
    as_of: dt.date | None,
    now: dt.datetime,
) -> SessionCheck:
    """The stale-session guard. Expected session: ``as_of``'s session when given (bars after ``as_of``
    are ignored by the whole run: a replay, meant for fresh state such as demos and tests); else, for
    historical sources (sample, files), the last session in their data; else the last completed XNYS
    session.
    The run is refused (``ok`` false) when no symbol's latest bar is the expected session; single
    stale symbols are listed (risk denies their entries)."""
    latest = latest_sessions_until(engine, symbols, as_of)
    missing = [s for s in symbols if s not in latest]
    if as_of is not None:
        expected = last_session_on_or_before(as_of)
        basis = f"as_of {as_of}"
    elif source in HISTORICAL_SOURCES:
        if not latest:
            return SessionCheck(
                as_of or dt.date.min,
                {},
                (),
                {s: "no bars" for s in symbols},
                False,
                f"no bars stored for {', '.join(symbols)}: nothing to trade on",
            )
        expected = max(latest.values())
        basis = f"the last session in the {source} data"
    else:
        expected = last_completed_session(now)
        basis = "the last completed XNYS session"
    stale = {s: "no bars stored (unknown symbol or nothing fetched)" for s in missing}
    for s, d in latest.items():
        if d != expected:
            stale[s] = f"latest bar {d}, expected {expected}"
    fresh = tuple(s for s in symbols if s not in stale)
    if not fresh:
        newest = max(latest.values()) if latest else None
        msg = (
            f"stale data: the latest bar is {newest} but the run expects {expected} ({basis}); "
            "refusing to trade on old prices. "
            + ("Ingest bars up to that session." if as_of else "Ingest fresh bars (or pass as_of).")
        )
        return SessionCheck(expected, latest, fresh, stale, False, msg)
    msg = f"expected session {expected} ({basis}); {len(fresh)} of {len(symbols)} symbols are current"
    if stale:
        msg += "; stale: " + "; ".join(f"{s}: {w}" for s, w in sorted(stale.items()))
    return SessionCheck(expected, latest, fresh, stale, True, msg)


# -- model ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """Which model's predictions become signals, or why there is none."""

    entry: ModelEntry | None
    source: str  # champion / best_challenger / none
    trained_now: bool
    message: str


def no_model_message(engine: Engine) -> str:
    """Why there is no champion and what a person can do about it."""
    from stockflow import registry

    models = registry.list_models(engine, limit=5)
    if not models:
        why = "no model was ever trained"
    else:
        best = registry.best_challenger(engine)
        gate = (best.metrics.get("gate") or {}) if best else {}
        reason = gate.get("reason") if isinstance(gate, dict) else None
        why = "the last retrain found no model better than the baselines" + (
            f" (best challenger {best.version}: {reason})" if best else ""
        )
    return (
        f"no champion model: {why}. Nothing was traded and no signal was made up. "
        "To trade anyway for a demo, promote one by hand: `stockflow models promote VERSION --force "
        "--reason demo` (see `stockflow models list`), or set trading.signal_source=best_challenger "
        "(demos and tests only)."
    )


def choose_model(settings: Settings, engine: Engine, *, trained_now: bool = False) -> ModelChoice:
    """The champion; with ``trading.signal_source = best_challenger`` (demo/test opt-in) the best model
    of the latest retrain, even when a champion exists (``make run`` promotes one; a demo setting that
    is silently ignored then would never show the approval path), and every message says so."""
    from stockflow import registry

    champ = registry.champion(engine)
    if settings.trading.signal_source == "best_challenger":
        best = registry.best_challenger(engine)
        if best is not None and (champ is None or best.version != champ.version):
            why = "NO CHAMPION" if champ is None else f"DEMO: champion {champ.version} set aside"
            return ModelChoice(
                best,
                "best_challenger",
                trained_now,
                f"{why}: using the best challenger {best.version} ({best.kind}) because "
                "trading.signal_source=best_challenger (demo/test opt-in); it did NOT beat the baselines",
            )
    if champ is not None:
        return ModelChoice(champ, "champion", trained_now, f"champion {champ.version} ({champ.kind})")
    return ModelChoice(None, "none", trained_now, no_model_message(engine))


def never_trained(engine: Engine) -> bool:
    """True when the registry holds no model at all."""
    from stockflow import registry

    return not registry.list_models(engine, limit=1)


# -- features and drivers ----------------------------------------------------------------------------


def history_start(settings: Settings, expected: dt.date, extra_rows: int = 0) -> dt.date:
    """A first session that leaves enough bars for stable features on ``expected`` (calendar days with
    a margin for weekends and holidays)."""
    from stockflow.features import required_history

    rows = required_history(settings.features) + extra_rows
    return expected - dt.timedelta(days=math.ceil(rows * 1.5) + 10)


def feature_frame(
    settings: Settings, engine: Engine, symbols: Sequence[str], expected: dt.date
) -> pl.DataFrame:
    """Features of the universe over the recent history (for the signals' drivers)."""
    from stockflow.features import build_features

    bars = load_bars(engine, symbols, start=history_start(settings, expected, 260), end=expected)
    if bars.is_empty():
        return bars
    frame = build_features(bars, settings.features)
    return frame.filter(~pl.col("warmup"))


def model_importances(entry: ModelEntry | None) -> dict[str, float]:
    """Feature importances from the model's card, when it has them."""
    if entry is None:
        return {}
    from models.base import read_card

    try:
        card = read_card(Path(entry.artifact_path))
    except Exception:
        return {}
    imp = card.get("feature_importance") or {}
    return (
        {str(k): float(v) for k, v in imp.items() if isinstance(v, int | float)}
        if isinstance(imp, dict)
        else {}
    )


# -- risk: from routed signals to orders --------------------------------------------------------------


@dataclass(frozen=True)
class PlannedOrder:
    """An order the risk engine approved (possibly sized down), with what a person would be shown."""

    routed: Routed
    request: OrderRequest
    decision: Decision
    proposed: ProposedOrder

    @property
    def symbol(self) -> str:
        """The order's symbol."""
        return self.request.symbol


@dataclass(frozen=True)
class Refusal:
    """An order not sent, and why."""

    symbol: str
    reason_code: str
    reason: str
    status: SignalStatus = SignalStatus.REJECTED


@dataclass
class Plan:
    """The orders of one run: sent on their own (``auto``), waiting for a person (``approval``),
    refused by risk (``refused``); ``decisions`` is every risk decision (stored with reason codes)."""

    auto: list[PlannedOrder] = field(default_factory=list)
    approval: list[PlannedOrder] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def run_key(expected: dt.date) -> str:
    """The id that makes client order ids: stable per session, so a re-run of the same session can
    never send a second order for the same decision (the broker answers "already submitted")."""
    return f"trade-{expected.isoformat()}"


def _prices(bars_latest: pl.DataFrame) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for r in bars_latest.iter_rows(named=True):
        p = r["close"]
        if p is not None and math.isfinite(p) and p > 0:
            out[r["symbol"]] = to_decimal(p)
    return out


def latest_prices(engine: Engine, symbols: Sequence[str], expected: dt.date) -> dict[str, Decimal]:
    """The last close per symbol (on or before ``expected``)."""
    bars = load_bars(engine, symbols, start=expected - dt.timedelta(days=30), end=expected)
    if bars.is_empty():
        return {}
    return _prices(bars.group_by("symbol").agg(pl.all().sort_by("session").last()))


def _resting_stops_excluded(orders: Sequence[Order]) -> list[Order]:
    # A resting protective stop is cancelled by the exit that replaces it (execution cancels it), so it
    # must not count as a pending sell that leaves "nothing to exit".
    return [o for o in orders if o.type is not OrderType.STOP]


def plan_orders(
    routed: Sequence[Routed],
    *,
    settings: Settings,
    account: Any,
    positions: Sequence[Position],
    open_orders: Sequence[Order],
    state: StateInfo | TradingState,
    prices: Mapping[str, Decimal],
    session_check: SessionCheck,
) -> Plan:
    """Turn the routed BUY/SELL signals into orders and let the risk engine decide each one."""
    held = {p.symbol: p.qty for p in positions if p.qty != 0}
    equity = float(account.equity)
    spendable = float(min(account.cash, account.buying_power))
    key = run_key(session_check.expected)
    plan = Plan()
    candidates: list[tuple[Routed, OrderRequest]] = []
    for r in routed:
        if r.route is Route.IGNORED or r.signal.action is Action.HOLD:
            continue
        sig = r.signal
        price = prices.get(sig.symbol)
        if price is None or price <= 0:
            plan.refused.append(
                Refusal(sig.symbol, "risk:denied:no_price", f"{sig.symbol}: no positive price to trade on")
            )
            continue
        have = held.get(sig.symbol, Decimal(0))
        side = Side.BUY if sig.action is Action.BUY else Side.SELL
        exit_ = have != 0 and ((have > 0 and side is Side.SELL) or (have < 0 and side is Side.BUY))
        if exit_:
            qty = abs(have)
        else:
            stop = initial_stop(float(price), settings.risk.stop_loss)
            n = position_size(
                equity,
                spendable,
                float(price),
                stop,
                settings.risk.risk_per_trade,
                settings.risk.max_position_weight,
            )
            qty = Decimal(max(n, 1))  # 0 shares: let the risk engine say which rule leaves no room
        req = OrderRequest(
            client_order_id=client_order_id(
                key, session_check.expected, sig.symbol, side, "exit" if exit_ else "entry"
            ),
            symbol=sig.symbol,
            side=side,
            qty=qty,
            type=OrderType.MARKET,
            reference_price=price,
            reason=f"{r.reason}; {sig.explain()}"[:500],
            intent="exit" if exit_ else "entry",
        )
        candidates.append((r, req))
    # Exits first (the engine frees capacity with them), then the most confident entries.
    candidates.sort(
        key=lambda rc: (0 if rc[1].intent == "exit" else 1, -rc[0].signal.confidence, rc[1].symbol)
    )
    if not candidates:
        return plan
    market = MarketContext(
        expected_session=session_check.expected,
        latest_sessions=session_check.latest,
        prices=dict(prices),
        open_orders=_resting_stops_excluded(open_orders),
    )
    decisions = check_orders(
        [c[1] for c in candidates], account, list(positions), state, settings.risk, market
    )
    plan.decisions = list(decisions)
    for (r, req), d in zip(candidates, decisions, strict=True):
        if d.approved is None:
            plan.refused.append(Refusal(req.symbol, f"risk:{d.reason_code}", d.detail or d.reason_code))
            continue
        planned = PlannedOrder(r, d.approved, d, propose(r, d.approved, d, equity, settings))
        (plan.approval if r.route is Route.APPROVAL else plan.auto).append(planned)
    return plan


def propose(
    routed: Routed, req: OrderRequest, decision: Decision, equity: float, settings: Settings
) -> ProposedOrder:
    """What a person is shown for one order: price, stop, confidence, risk taken and reason."""
    price = float(req.reference_price or 0)
    qty = float(req.qty)
    if req.intent == "exit":
        stop, risk = None, 0.0
    else:
        stop = round(initial_stop(price, settings.risk.stop_loss), 4)
        risk = qty * (price - stop)
    why = routed.reason
    if decision.action == "sized_down":
        why += f"; sized down by risk ({decision.rule}: {decision.detail})"
    drivers = ", ".join(d.describe() for d in routed.signal.drivers)
    if drivers:
        method = routed.signal.drivers[0].method or "feature z-scores"
        why += f"; drivers ({method}): {drivers}"
    return ProposedOrder(
        symbol=req.symbol,
        side=req.side.value,
        qty=qty,
        reference_price=price,
        stop_price=stop,
        confidence=routed.signal.confidence,
        probability=routed.signal.probability,
        risk_amount=round(risk, 2),
        risk_pct=risk / equity if equity > 0 else 0.0,
        notional=round(qty * price, 2),
        reason=why,
        client_order_id=req.client_order_id,
        intent=req.intent,
    )


# -- after approval: re-validation -----------------------------------------------------------------------


def revalidate(
    approved: Sequence[PlannedOrder],
    *,
    settings: Settings,
    account: Any,
    positions: Sequence[Position],
    open_orders: Sequence[Order],
    state: StateInfo,
    prices_now: Mapping[str, Decimal],
    clock_session_then: dt.date | None,
    clock_session_now: dt.date | None,
    session_check: SessionCheck,
    orders_sent: int,
) -> tuple[list[PlannedOrder], list[Refusal]]:
    """Check approved orders again after the wait: trading state, market session, price moves and every
    risk limit with the account as it is now. An order that would now be denied or sized down is not
    sent (a person approved exactly what was shown, nothing else)."""
    ok: list[PlannedOrder] = []
    refused: list[Refusal] = []
    if clock_session_then != clock_session_now:
        why = (
            f"the market session changed while waiting for approval ({clock_session_then} -> "
            f"{clock_session_now}); the plan's prices are from another session"
        )
        return [], [Refusal(p.symbol, "revalidate:session_changed", why) for p in approved]
    candidates: list[PlannedOrder] = []
    for p in approved:
        if state.state is TradingState.HALTED:
            refused.append(
                Refusal(p.symbol, "revalidate:halted", f"trading state is HALTED ({state.reason})")
            )
            continue
        if state.state is TradingState.REDUCING and p.request.intent != "exit":
            refused.append(Refusal(p.symbol, "revalidate:reducing", "trading state is REDUCING: exits only"))
            continue
        ref = p.request.reference_price
        now = prices_now.get(p.symbol)
        if ref is None or now is None or now <= 0:
            refused.append(Refusal(p.symbol, "revalidate:no_price", f"{p.symbol}: no current price"))
            continue
        move = abs(float(now / ref) - 1.0)
        if move > settings.trading.max_price_move:
            refused.append(
                Refusal(
                    p.symbol,
                    "revalidate:price_moved",
                    f"{p.symbol}: price {now} vs {ref} shown "
                    f"({move:.2%} > {settings.trading.max_price_move:.2%})",
                )
            )
            continue
        candidates.append(p)
    if not candidates:
        return ok, refused
    market = MarketContext(
        expected_session=session_check.expected,
        latest_sessions=session_check.latest,
        prices=dict(prices_now),
        open_orders=_resting_stops_excluded(open_orders),
        orders_sent_this_run=orders_sent,
    )
    decisions = check_orders(
        [p.request for p in candidates], account, list(positions), state, settings.risk, market
    )
    for p, d in zip(candidates, decisions, strict=True):
        if d.approved is None or d.approved.qty != p.request.qty:
            refused.append(
                Refusal(
                    p.symbol, f"revalidate:{d.reason_code}"[:64], f"limits changed while waiting: {d.detail}"
                )
            )
        else:
            ok.append(p)
    return ok, refused


# -- execution results ----------------------------------------------------------------------------------


def result_status(result: ExecutionResult) -> tuple[SignalStatus, str, str]:
    """The signal status, reason code and reason of one execution result."""
    if result.sent:
        order = result.order
        st = order.status.value if order is not None else result.outcome
        return SignalStatus.EXECUTED, f"sent:{result.outcome}", f"broker status {st}"
    return SignalStatus.FAILED, f"execution:{result.outcome}", result.error or result.outcome


def order_rows_for_report(
    plan: Plan, results: Sequence[ExecutionResult], extra_refused: Sequence[Refusal] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sent, refused) rows for the summary and the ``trade-orders`` artifact."""
    by_cid = {p.request.client_order_id: p for p in [*plan.auto, *plan.approval]}
    sent: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = [
        {"symbol": r.symbol, "reason_code": r.reason_code, "reason": r.reason, "status": r.status.value}
        for r in [*plan.refused, *extra_refused]
    ]
    for res in results:
        req = res.request
        p = by_cid.get(req.client_order_id)
        row = {
            "symbol": req.symbol,
            "side": req.side.value,
            "qty": float(req.qty),
            "reference_price": float(req.reference_price or 0),
            "route": p.routed.route.value if p else "",
            "client_order_id": req.client_order_id,
        }
        if res.sent:
            status = res.order.status.value if res.order is not None else OrderStatus.NEW.value
            sent.append({**row, "status": status, "outcome": res.outcome})
        else:
            refused.append(
                {
                    "symbol": req.symbol,
                    "reason_code": f"execution:{res.outcome}",
                    "reason": res.error or res.outcome,
                    "status": SignalStatus.FAILED.value,
                }
            )
    return sent, refused


def log_plan(plan: Plan) -> None:
    """One log line per planned and refused order."""
    log = get_logger()
    for p in plan.auto:
        log.info(f"auto: {p.proposed.title} ({p.decision.reason_code})")
    for p in plan.approval:
        log.info(f"needs approval: {p.proposed.title} ({p.decision.reason_code})")
    for r in plan.refused:
        log.info(f"refused: {r.symbol}: {r.reason_code} - {r.reason}")


def parse_as_of(as_of: str | dt.date | None) -> dt.date | None:
    """``as_of`` as a date; :class:`DataError` for text that is not YYYY-MM-DD."""
    if as_of is None or isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of).strip())
    except ValueError:
        raise DataError(f"as_of {as_of!r} is not a date (YYYY-MM-DD)", rule="as_of") from None


def held_quantities(positions: Sequence[Position]) -> dict[str, float]:
    """symbol -> signed quantity held."""
    return {p.symbol: float(p.qty) for p in positions if p.qty != 0}


def broker_for(settings: Settings, engine: Engine) -> Broker:
    """The configured broker."""
    from stockflow.brokers import make_broker

    return make_broker(settings, engine)


def predict_for(
    settings: Settings, engine: Engine, choice: ModelChoice, symbols: Sequence[str], session: dt.date
) -> tuple[list[Any], dict[str, str]]:
    """Predictions of the chosen model for ``session`` (stored idempotently by the models area's
    ``run_predict``) and the symbols it could not score, with why."""
    from stockflow.predict import run_predict

    if choice.entry is None:
        return [], {}
    version = None if choice.source == "champion" else choice.entry.version
    rep = run_predict(settings, engine, list(symbols), session, version=version)
    return list(rep.predictions), dict(rep.skipped)
