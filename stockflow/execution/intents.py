"""Client order ids per *intent*, single-use forever.

Alpaca keeps a ``client_order_id`` forever: reusing one, even after the order was cancelled, answers
422 (a duplicate), and our idempotent submit then adopts the OLD order and sends nothing. So an order
that replaces another (a stop re-placed after an exit cancelled it, a trailed stop, a second attempt
after an expiry) is a new intent and needs a new id, while a replay of the same intent (a retry, a
restart after a crash) must get the same id again.

:func:`intent_order_id` derives the id from the intent's content (run key, session, symbol, side,
purpose, and e.g. qty and stop price) plus a generation number ``n``: the first ``n`` whose id our
order book has not seen in a final state. An id whose order is still working, or never reached the
broker, is the same intent being replayed and is returned again; an id whose order is final
(filled, cancelled, expired, rejected) is used up and the next generation is taken. The result depends
only on the inputs and our order book, so replays give the same ids.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from stockflow.brokers.ids import client_order_id
from stockflow.db.engine import transaction
from stockflow.db.models_trading import OrderRow
from stockflow.domain.orders import OrderStatus, Side

#: Generations tried before giving up (a stop replaced this often in one session is a bug elsewhere).
MAX_GENERATIONS = 1000


def intent_order_id(
    engine: Engine,
    *,
    run_id: str,
    session: dt.date,
    symbol: str,
    side: Side | str,
    purpose: str,
    content: str = "",
    filled_is_done: bool = False,
) -> str:
    """The client order id for this intent (see the module docstring); at most 64 characters. With
    ``filled_is_done`` a generation that filled (even in part) ends the search: the intent was carried
    out, and its id is returned so that nothing is sent again."""
    with transaction(engine) as s:
        for n in range(MAX_GENERATIONS):
            cid = client_order_id(run_id, session, symbol, side, purpose, intent=f"{content}#{n}")
            row = s.execute(
                select(OrderRow.status, OrderRow.filled_qty).where(OrderRow.client_order_id == cid)
            ).first()
            if row is None or not OrderStatus(row[0]).is_terminal or row[0] == OrderStatus.NOT_SENT:
                return cid
            if filled_is_done and row[1] > 0:
                return cid
    raise RuntimeError(f"{symbol} {purpose}: {MAX_GENERATIONS} order ids of one intent used up")
