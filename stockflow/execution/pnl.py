"""P&L baselines from the broker's own figures.

Daily P&L is measured against the broker's equity at the previous close when the broker reports it
(Alpaca's ``last_equity``), else against our previous snapshot; money moved in or out today (Alpaca's
CSD/CSW cash activities) is taken out, because a deposit is not a return. The total return of the
equity curve starts from the first equity stockflow recorded for the account, never from a configured
amount: ``broker.initial_cash`` is the paper broker's opening balance and says nothing about a real
account (with it, an untouched $101k Alpaca account showed "+917%").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from stockflow.domain.orders import Account
from stockflow.risk.pdt import NEW_YORK


@dataclass(frozen=True, slots=True)
class PnlBaseline:
    """What today's P&L and the total return are measured against, and where the figures came from."""

    prev_equity: float  # equity at the previous close
    start_equity: float  # the first equity of the curve
    flows_today: float  # deposits (+) and withdrawals (-) since the previous close
    source: str  # broker:last_equity / snapshot / opening balance / first sight


def pnl_baseline(
    account: Account,
    history: Sequence[tuple[dt.date, float]],
    session: dt.date,
    *,
    opening_balance: float | Decimal | None = None,
    flows_today: float | Decimal = 0,
) -> PnlBaseline:
    """The baselines of ``session``'s snapshot (see the module docstring). ``history`` holds earlier
    snapshots (session, equity); ``opening_balance`` is what a simulated account started with (the
    paper broker), None for a real account."""
    prior = sorted((s, e) for s, e in history if s < session)
    equity = float(account.equity)
    if account.last_equity is not None:
        prev, source = float(account.last_equity), "broker:last_equity"
    elif prior:
        prev, source = prior[-1][1], "snapshot"
    elif opening_balance is not None:
        prev, source = float(opening_balance), "opening balance"
    else:
        prev, source = equity - float(flows_today), "first sight"
    if prior:
        start = prior[0][1]
    elif opening_balance is not None and account.last_equity is None:
        start = float(opening_balance)
    else:
        start = prev  # a real account first seen today: its return starts here
    return PnlBaseline(prev, start, float(flows_today), source)


def broker_baseline(
    broker: object, account: Account, history: Sequence[tuple[dt.date, float]], session: dt.date
) -> PnlBaseline:
    """:func:`pnl_baseline` with what the broker offers: the paper broker's opening balance, Alpaca's
    deposits and withdrawals since the previous close (from its CSD/CSW activities)."""
    opening = getattr(broker, "opening_balance", None)
    flows: Decimal | float = 0
    cash_flows = getattr(broker, "cash_flows", None)
    if callable(cash_flows) and account.last_equity is not None:
        prev = session - dt.timedelta(days=1)
        while prev.weekday() >= 5:
            prev -= dt.timedelta(days=1)
        flows = cash_flows(dt.datetime.combine(prev, dt.time(16), tzinfo=NEW_YORK))
    return pnl_baseline(account, history, session, opening_balance=opening, flows_today=flows)
