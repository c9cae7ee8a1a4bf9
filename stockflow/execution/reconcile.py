"""Reconciliation of our order book and ledger with the broker: at the start of every run, after every
resume, and after a crash.

1. Fills: the broker's recent fills are applied once (by execution id); orders behind fills we did not
   place are adopted as ``outside`` orders and recorded.
2. Our open orders: each is looked up by client_order_id. Found -> our row takes the broker's status
   (this settles ``pending_submit``/``unknown`` rows left by a crash or a timeout). Not found -> a row
   that was never acknowledged becomes ``not_sent`` (resending it later under the same id is safe);
   an order the broker acknowledged before but no longer knows is a mismatch.
3. The broker's open orders we do not know are adopted (outside activity) and recorded.
4. Corporate actions the broker announces (splits, dividends) are applied to the ledger once and
   recorded (:mod:`stockflow.execution.corporate`).
5. Positions: the broker's positions must equal our ledger (built from fills). A difference no fill
   or corporate action explains is a mismatch, unless ``adopt_unexplained``
   (``stockflow reconcile --adopt``) accepts the broker's positions and records the adjustment.
6. Account: a blocked account or non-positive equity is a mismatch.

Mismatches are recorded, then ``HaltError`` is raised naming each one: no trading on a difference that
cannot be explained.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, select

from stockflow.brokers.base import Broker
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_trading import LedgerPosition, OrderRow
from stockflow.domain.orders import OPEN_STATUSES, ZERO, Account, Fill, Order, OrderStatus, Position
from stockflow.errors import HaltError
from stockflow.execution._log import trading_logger
from stockflow.execution.corporate import LOOKBACK, apply_corporate_actions
from stockflow.execution.fills import sync_fills_adopting
from stockflow.execution.order_records import (
    UNSENT_STATUSES,
    outside_order_row,
    record_event,
    update_row_from_broker,
)


@dataclass
class ReconcileReport:
    """What one reconciliation saw and did."""

    broker: str
    run_id: str | None
    account: Account
    positions: list[Position]
    open_orders: list[Order]
    fills_applied: list[Fill] = field(default_factory=list)
    adopted_orders: list[str] = field(default_factory=list)
    resolved: list[tuple[str, str, str]] = field(default_factory=list)  # (client id, from, to)
    adjustments: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing needed adopting, resolving or adjusting and nothing is wrong."""
        return not (self.adopted_orders or self.resolved or self.adjustments or self.problems)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        a = self.account
        return (
            f"{self.broker}: {len(self.fills_applied)} fills applied, "
            f"{len(self.adopted_orders)} outside orders adopted, {len(self.resolved)} orders resolved, "
            f"{len(self.adjustments)} adjustments, {len(self.problems)} problems; "
            f"equity {a.equity:.2f}, cash {a.cash:.2f}, {len(self.positions)} positions, "
            f"{len(self.open_orders)} open orders"
        )


def reconcile(
    engine: Engine,
    broker: Broker,
    *,
    run_id: str | None = None,
    adopt_unexplained: bool = False,
    actor: str = "stockflow",
) -> ReconcileReport:
    """Reconcile with the broker (see the module docstring); raises ``HaltError`` on unexplained
    differences after recording them."""
    log = trading_logger("stockflow.execution")
    name = broker.name
    # Our open rows as they were before anything is applied (to report what got resolved).
    with transaction(engine) as s:
        ours = s.scalars(
            select(OrderRow).where(
                OrderRow.broker == name, OrderRow.status.in_([st.value for st in OPEN_STATUSES])
            )
        ).all()
        our_cids = {r.client_order_id for r in ours}
        lookups = {r.client_order_id: (r.status, r.broker_order_id, r.session) for r in ours}
    fills_applied, adopted = sync_fills_adopting(engine, broker, run_id=run_id)
    broker_open = {o.client_order_id: o for o in broker.open_orders()}
    resolved: list[tuple[str, str, str]] = []
    adjustments: list[str] = []
    problems: list[str] = []

    # 2. Our open rows against the broker.
    found: dict[str, Order | None] = {}
    for cid in lookups:
        found[cid] = broker_open.get(cid) or broker.get_order_by_client_id(cid)
    with transaction(engine) as s:
        for cid, (status, broker_id, row_session) in lookups.items():
            row = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).one()
            order = found[cid]
            if order is not None:
                update_row_from_broker(row, order)
                if OrderStatus(status) in UNSENT_STATUSES:
                    resolved.append((cid, status, order.status.value))
                    record_event(
                        s,
                        broker=name,
                        run_id=run_id,
                        kind="resolved",
                        symbol=row.symbol,
                        client_order_id=cid,
                        was=status,
                        now=order.status.value,
                        broker_order_id=order.broker_order_id,
                    )
                continue
            if OrderStatus(status) in UNSENT_STATUSES:
                row.status, row.updated_at = OrderStatus.NOT_SENT.value, utcnow()
                row.error = (row.error or "") + " | reconcile: the broker never received it"
                resolved.append((cid, status, OrderStatus.NOT_SENT.value))
                record_event(
                    s,
                    broker=name,
                    run_id=run_id,
                    kind="not_at_broker",
                    symbol=row.symbol,
                    client_order_id=cid,
                    was=status,
                    session=row_session,
                )
                continue
            problems.append(
                f"order {cid} ({row.symbol} {row.side} {row.qty}) was acknowledged by the broker "
                f"(id {broker_id}) but the broker no longer knows it"
            )

        # 3. Outside orders still working.
        for cid, o in broker_open.items():
            if cid in our_cids:
                continue
            known = s.scalars(select(OrderRow).where(OrderRow.client_order_id == cid)).first()
            if known is not None:  # we took it for final, the broker says it still works: believe the broker
                update_row_from_broker(known, o)
                continue
            s.add(outside_order_row(o, broker=name, run_id=run_id))
            adopted.append(cid)
            record_event(
                s,
                broker=name,
                run_id=run_id,
                kind="adopted_outside_order",
                symbol=o.symbol,
                client_order_id=cid,
                broker_order_id=o.broker_order_id,
                side=o.side.value,
                qty=o.qty,
                status=o.status.value,
            )

    # 4. Corporate actions, then 5. positions against the ledger.
    positions = broker.positions()
    account = broker.account()
    split_notes: list[str] = []
    if callable(getattr(broker, "corporate_actions", None)):
        clock = broker.clock()
        ref = clock.session or clock.timestamp.date()
        actions = broker.corporate_actions(ref - LOOKBACK, ref + dt.timedelta(days=1))
        done, split_notes = apply_corporate_actions(
            engine, name, actions, {p.symbol: p.qty for p in positions}, run_id=run_id
        )
        adjustments.extend(done)
    with transaction(engine) as s:
        ledger = {r.symbol: r for r in s.scalars(select(LedgerPosition).where(LedgerPosition.broker == name))}
        theirs = {p.symbol: p for p in positions}
        for sym in sorted(set(ledger) | set(theirs)):
            ours_q = ledger[sym].qty if sym in ledger else ZERO
            theirs_q = theirs[sym].qty if sym in theirs else ZERO
            if ours_q == theirs_q:
                continue
            if adopt_unexplained:
                led = ledger.get(sym)
                if led is None:
                    led = LedgerPosition(
                        broker=name,
                        symbol=sym,
                        qty=ZERO,
                        cost_basis=ZERO,
                        realized_pnl=ZERO,
                        commissions=ZERO,
                        updated_at=utcnow(),
                    )
                    s.add(led)
                avg = theirs[sym].avg_entry_price if sym in theirs else Decimal(0)
                led.qty, led.cost_basis, led.updated_at = theirs_q, theirs_q * avg, utcnow()
                led.high_since_entry, led.stop_price = None, None
                led.opened_at = utcnow() if theirs_q != 0 else None
                adjustments.append(f"{sym}: ledger {ours_q} -> broker {theirs_q}")
                record_event(
                    s,
                    broker=name,
                    run_id=run_id,
                    kind="position_adopted",
                    symbol=sym,
                    ledger_qty=ours_q,
                    broker_qty=theirs_q,
                    actor=actor,
                )
            else:
                why = "".join(f" ({n})" for n in split_notes if n.startswith(f"{sym}:"))
                problems.append(
                    f"position {sym}: the broker holds {theirs_q}, stockflow's ledger {ours_q} "
                    f"after applying every fill (difference {theirs_q - ours_q}); no fill or corporate "
                    f"action explains it{why}. "
                    "Check the broker's account activity, then accept its positions with "
                    "`stockflow reconcile --adopt`"
                )
        if account.trading_blocked:
            problems.append(f"the broker account is blocked from trading (status {account.status})")
        if account.equity <= 0:
            problems.append(f"the broker reports non-positive equity {account.equity}")
        for p in problems:
            record_event(s, broker=name, run_id=run_id, kind="mismatch", detail_text=p)

    report = ReconcileReport(
        broker=name,
        run_id=run_id,
        account=account,
        positions=positions,
        open_orders=list(broker_open.values()),
        fills_applied=fills_applied,
        adopted_orders=adopted,
        resolved=resolved,
        adjustments=adjustments,
        problems=problems,
    )
    if problems:
        raise HaltError(
            "reconciliation found differences it cannot explain; not trading:\n  - " + "\n  - ".join(problems)
        )
    log.info("reconciled %s", report.summary())
    return report
