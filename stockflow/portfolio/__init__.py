"""Portfolio construction: from cross-sectional scores to a target book and its orders.

:func:`select_topk` is the one rule that turns a session's scores into the set of symbols to hold;
:func:`target_book` sizes it under the risk rules and :func:`orders_for` turns it into orders (exits
first). The live ``trade`` run, the backtester's ML strategy and the promotion gate's net-of-cost
evaluation all call them, so what is evaluated is what is traded.
"""

from stockflow.portfolio.construct import (
    CONFIDENCE_DEFINITION,
    BookOrder,
    BookRules,
    Line,
    Score,
    TargetBook,
    orders_for,
    size_entries,
    target_book,
)
from stockflow.portfolio.topk import TopkSelection, rank_scores, select_topk

__all__ = [
    "CONFIDENCE_DEFINITION",
    "BookOrder",
    "BookRules",
    "Line",
    "Score",
    "TargetBook",
    "TopkSelection",
    "orders_for",
    "rank_scores",
    "select_topk",
    "size_entries",
    "target_book",
]
