"""Portfolio construction: from cross-sectional scores to a target book.

:func:`select_topk` is the one rule that turns a session's scores into the set of symbols to hold; the
live ``trade`` run, the backtester's ML strategy and the promotion gate's net-of-cost evaluation all
call it, so what is evaluated is what is traded.
"""

from stockflow.portfolio.topk import TopkSelection, rank_scores, select_topk

__all__ = ["TopkSelection", "rank_scores", "select_topk"]
