"""Corporate actions in reconciliation: a split changes the held quantity (and the price space of the
cost basis and the stop), a dividend pays cash. Without this, a split shows up as a quantity
difference no fill explains and reconciliation halts trading.

Each action the broker announces (Alpaca's corporate-action announcements; the paper broker's split
factors and dividends on the bars) is applied to our ledger once (``applied_corporate_actions``,
unique per broker and action id) and recorded as a ``corporate_action`` reconciliation event:

- split by ``ratio``: the part of the position held at the ex-date is multiplied by the ratio (fills
  after the ex-date are already in the new share count), the cost basis stays, the stop level and the
  high since entry are divided by the ratio. It is applied only when it explains the broker's
  quantity; when the ledger already matches the broker (e.g. positions adopted after the split) it is
  recorded as already reflected; otherwise it is left to the mismatch report, which names the split.
- dividend: the cash paid on the position held at the ex-date is recorded (the broker's cash and
  equity carry it; it is income, never a deposit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_live import AppliedCorporateAction
from stockflow.db.models_trading import FillRow, LedgerPosition
from stockflow.domain.corporate import CorporateAction
from stockflow.domain.orders import ZERO, Side
from stockflow.execution.order_records import record_event
from stockflow.risk.pdt import NEW_YORK

#: How far back reconciliation asks the broker for announcements.
LOOKBACK = dt.timedelta(days=30)


def _net_since(s: Session, broker: str, symbol: str, since: dt.datetime) -> Decimal:
    total = ZERO
    for side, qty in s.execute(
        select(FillRow.side, FillRow.qty).where(
            FillRow.broker == broker, FillRow.symbol == symbol, FillRow.filled_at >= since
        )
    ):
        total += qty * Side(side).sign
    return total


def apply_corporate_actions(
    engine: Engine,
    broker: str,
    actions: Sequence[CorporateAction],
    broker_qty: Mapping[str, Decimal],
    *,
    run_id: str | None = None,
) -> tuple[list[str], list[str]]:
    """Apply new actions to the ledger (see the module docstring). Returns (adjustments made, notes on
    splits that did not explain the broker's quantity, for the mismatch report)."""
    adjustments: list[str] = []
    unexplained: list[str] = []
    with transaction(engine) as s:
        done = set(
            s.scalars(
                select(AppliedCorporateAction.action_id).where(AppliedCorporateAction.broker == broker)
            ).all()
        )
        for a in sorted(actions, key=lambda x: (x.ex_date, x.action_id)):
            if a.action_id in done:
                continue
            led = s.scalars(
                select(LedgerPosition).where(
                    LedgerPosition.broker == broker, LedgerPosition.symbol == a.symbol
                )
            ).one_or_none()
            qty = led.qty if led is not None else ZERO
            ex = dt.datetime.combine(a.ex_date, dt.time(), tzinfo=NEW_YORK)
            after = _net_since(s, broker, a.symbol, ex)
            at_ex = qty - after
            theirs = broker_qty.get(a.symbol, ZERO)
            cash = ZERO
            new_qty = qty
            note = "applied"
            if a.kind == "split":
                candidate = a.split_qty(at_ex) + after
                if qty == theirs and candidate != theirs:
                    note = "already reflected"
                elif candidate != theirs:
                    unexplained.append(
                        f"{a.symbol}: a {a.ratio_text} split on {a.ex_date} gives {candidate}, the broker "
                        f"holds {theirs}"
                    )
                    continue  # not recorded: tried again next time
                elif led is not None and at_ex != 0:
                    new_qty = candidate
                    led.qty, led.updated_at = candidate, utcnow()
                    if led.stop_price is not None:
                        led.stop_price = a.split_price(led.stop_price)
                    if led.high_since_entry is not None:
                        led.high_since_entry = a.split_price(led.high_since_entry)
                    adjustments.append(
                        f"{a.symbol}: {a.ratio_text} split on {a.ex_date}: {qty} -> {candidate}"
                    )
            else:
                cash = at_ex * a.cash_per_share
                if cash:
                    adjustments.append(f"{a.symbol}: dividend {a.cash_per_share}/share on {at_ex}: {cash}")
            s.add(
                AppliedCorporateAction(
                    broker=broker,
                    action_id=a.action_id,
                    symbol=a.symbol,
                    kind=a.kind,
                    ex_date=a.ex_date,
                    ratio=a.ratio,
                    cash_per_share=a.cash_per_share,
                    qty_before=qty,
                    qty_after=new_qty,
                    cash=cash,
                    detail={"note": note, "qty_at_ex": str(at_ex)},
                    applied_at=utcnow(),
                )
            )
            record_event(
                s,
                broker=broker,
                run_id=run_id,
                kind="corporate_action",
                symbol=a.symbol,
                action_id=a.action_id,
                action=a.kind,
                ratio=a.ratio,
                cash_per_share=a.cash_per_share,
                qty_before=qty,
                qty_after=new_qty,
                cash=cash,
                note=note,
            )
    return adjustments, unexplained
