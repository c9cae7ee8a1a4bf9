"""Alpaca's rules and corporate actions inside the paper broker, so that paper behaves as the real
account does: the wash-trade refusal, the pattern-day-trader refusal (``broker.paper_pdt``), and splits
and cash dividends applied from the bars (``split_factor`` = new shares per old share, ``dividend`` =
cash per share, on the ex-date's bar; both optional columns).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.models_live import PaperCorporateAction
from stockflow.db.models_trading import PaperAccountRow, PaperFillRow, PaperOrderRow, PaperPositionRow
from stockflow.domain.corporate import CorporateAction
from stockflow.domain.orders import ZERO, OrderRequest, OrderStatus, Side, to_decimal
from stockflow.errors import RejectedError
from stockflow.risk.pdt import PDT_EQUITY, DayTrades, day_trades

_OPEN = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)


def check_wash_trade(s: Session, request: OrderRequest) -> None:
    """Refuse an order opposite in side to an open order of the same symbol (Alpaca's 403)."""
    other = s.scalars(
        select(PaperOrderRow).where(
            PaperOrderRow.status.in_(_OPEN),
            PaperOrderRow.symbol == request.symbol,
            PaperOrderRow.side != request.side.value,
        )
    ).first()
    if other is not None:
        raise RejectedError(
            f"paper broker: potential wash trade detected: {request.side.value} {request.symbol} while "
            f"{other.side} order {other.client_order_id} is open (cancel it first, or use one bracket order)"
        )


def paper_day_trades(s: Session, trade_date: dt.date) -> DayTrades:
    """Day trades in the paper account's fills, in the window ending on ``trade_date``."""
    since = trade_date - dt.timedelta(days=14)
    rows = s.execute(
        select(PaperFillRow.session, PaperFillRow.symbol, PaperFillRow.side).where(
            PaperFillRow.session >= since
        )
    ).all()
    return day_trades(((d, sym, Side(side)) for d, sym, side in rows), trade_date)


def check_pdt(s: Session, symbol: str, side: Side, trade_date: dt.date, equity: Decimal) -> str | None:
    """Why the pattern-day-trader rule refuses this fill/order, or None."""
    return paper_day_trades(s, trade_date).refusal(symbol, side, equity, PDT_EQUITY)


def next_session(day: dt.date | None) -> dt.date:
    """The weekday after ``day`` (today when None): when an order placed now executes."""
    d = (day or dt.date.today()) + dt.timedelta(days=1)
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def actions_from_bar(symbol: str, session: dt.date, bar: dict) -> list[CorporateAction]:
    """The split and dividend a bar announces (columns ``split_factor`` / ``dividend``)."""
    out = []
    factor = bar.get("split_factor")
    if factor is not None and float(factor) > 0 and float(factor) != 1.0:
        out.append(
            CorporateAction(
                action_id=f"paper-split-{symbol}-{session}",
                symbol=symbol,
                kind="split",
                ex_date=session,
                ratio=to_decimal(float(factor)),
            )
        )
    cash = bar.get("dividend")
    if cash is not None and float(cash) > 0:
        out.append(
            CorporateAction(
                action_id=f"paper-dividend-{symbol}-{session}",
                symbol=symbol,
                kind="dividend",
                ex_date=session,
                cash_per_share=to_decimal(float(cash)),
            )
        )
    return out


def apply_action(s: Session, acct: PaperAccountRow, action: CorporateAction) -> bool:
    """Apply one action to the paper account (once, by action id): a split multiplies the position by
    the ratio at the same cost and cancels the symbol's open orders (their prices are in the old price
    space; Alpaca does the same); a dividend pays cash on the position."""
    if s.get(PaperCorporateAction, action.action_id) is not None:
        return False
    pos = s.get(PaperPositionRow, action.symbol)
    if action.kind == "split":
        if pos is not None:
            pos.qty, pos.updated_at = action.split_qty(pos.qty), utcnow()
        for o in s.scalars(
            select(PaperOrderRow).where(
                PaperOrderRow.symbol == action.symbol, PaperOrderRow.status.in_(_OPEN)
            )
        ):
            o.status, o.reject_reason, o.updated_at = (
                OrderStatus.CANCELED.value,
                f"cancelled by the {action.ratio_text} split",
                utcnow(),
            )
    else:
        acct.cash = acct.cash + (pos.qty if pos is not None else ZERO) * action.cash_per_share
    s.add(
        PaperCorporateAction(
            action_id=action.action_id,
            symbol=action.symbol,
            kind=action.kind,
            ex_date=action.ex_date,
            ratio=action.ratio,
            cash_per_share=action.cash_per_share,
        )
    )
    return True


def announced(s: Session, since: dt.date, until: dt.date) -> list[CorporateAction]:
    """The actions the paper broker applied with an ex-date in [since, until]."""
    rows = s.scalars(
        select(PaperCorporateAction)
        .where(PaperCorporateAction.ex_date >= since, PaperCorporateAction.ex_date <= until)
        .order_by(PaperCorporateAction.ex_date, PaperCorporateAction.action_id)
    )
    return [
        CorporateAction(
            action_id=r.action_id,
            symbol=r.symbol,
            kind=r.kind,  # type: ignore[arg-type]
            ex_date=r.ex_date,
            ratio=r.ratio,
            cash_per_share=r.cash_per_share,
        )
        for r in rows
    ]
