"""The live target-book rule inside the backtest loop (the ML strategy's top-k portfolio).

At each session's close the engine asks :class:`TopkRule` what to do with the positions it really holds
(after fills and stops), and the rule answers with :func:`stockflow.portfolio.target_book` and
:func:`stockflow.portfolio.orders_for`, the very functions the live ``trade`` run calls: the same
top-k selection with hold buffer and change bound, the same sizing under the risk rules, exits first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from stockflow.backtest.panel import Panel, _index
from stockflow.portfolio import BookRules, Score, orders_for, target_book


@dataclass(frozen=True)
class BookSpec:
    """Scores per (symbol, session) (``score``, ``prob_outperform``, ``expected_excess``) and the rules."""

    scores: pl.DataFrame
    rules: BookRules


class TopkRule:
    """:class:`BookSpec` aligned to a panel; :meth:`decide` is called once per session."""

    def __init__(self, spec: BookSpec, panel: Panel) -> None:
        self.rules = spec.rules
        self.symbols = panel.symbols
        shape = panel.shape
        self.score = np.full(shape, np.nan)
        self.prob = np.full(shape, 0.5)
        self.excess = np.zeros(shape)
        frame = spec.scores
        if not frame.is_empty():
            ti, si = _index(frame, panel.sessions, panel.symbols)
            keep = (ti >= 0) & (si >= 0)
            ti, si = ti[keep], si[keep]
            for name, arr in (("score", self.score), ("prob_outperform", self.prob),
                              ("expected_excess", self.excess)):  # fmt: skip
                if name in frame.columns:
                    arr[ti, si] = frame.get_column(name).cast(pl.Float64).to_numpy()[keep]
        # A symbol without a bar that session has no score (the live run predicts only current bars).
        self.score[~panel.valid] = np.nan

    def decide(
        self, t: int, held: np.ndarray, qty: np.ndarray, price: np.ndarray, *, equity: float, cash: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(exit columns, entry columns in rank order, entry quantities) at the close of session ``t``."""
        row = self.score[t]
        scored = np.flatnonzero(np.isfinite(row))
        syms = self.symbols
        scores = {
            syms[i]: Score(float(row[i]), float(self.prob[t, i]), float(self.excess[t, i])) for i in scored
        }
        held_idx = np.flatnonzero(held)
        book = {syms[i]: float(qty[i]) for i in held_idx}
        prices = {syms[i]: float(price[i]) for i in np.union1d(scored, held_idx) if price[i] > 0}
        tb = target_book(scores, book, prices, equity=equity, cash=cash, rules=self.rules)
        col = {s: i for i, s in enumerate(syms)}
        exits, entries, q = [], [], []
        for o in orders_for(tb, book):
            if o.intent == "exit":
                exits.append(col[o.symbol])
            else:
                entries.append(col[o.symbol])
                q.append(o.qty)
        return np.asarray(exits, dtype=np.int64), np.asarray(entries, dtype=np.int64), np.asarray(q)
