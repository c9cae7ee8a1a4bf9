"""Net-of-cost top-k portfolio of out-of-sample scores: what the promotion gate and the benchmark judge.

Each session the book is :func:`stockflow.portfolio.select_topk` over that session's scores (the same
rule, top_k, hold_buffer and max_changes as the live trade), held equally weighted until the next
session's close. Its return is the mean next-session return of the book minus costs; the benchmark is
the equal-weight universe (every scored symbol). Turnover is the share of the book's value traded
(an entry and an exit each count 1/k), and costs are ``turnover * cost_bps / 1e4``.

Figures (per-session series, the session is the unit): annualized excess return (mean * 252),
information ratio (mean / std * sqrt(252)), Newey-West t of the excess series, max drawdown of the
cumulative (summed) excess return, mean turnover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from stockflow.evaluation.panel import hac_t
from stockflow.portfolio import select_topk

SESSIONS_PER_YEAR = 252


@dataclass(frozen=True)
class TopkConfig:
    """The live trade's top-k parameters and the cost of trading (one way, per unit of value traded)."""

    top_k: int = 10
    hold_buffer: int = 5
    max_changes: int | None = 3
    cost_bps: float = 10.0


def topk_returns(preds: pl.DataFrame, cfg: TopkConfig, *, score: str = "p") -> pl.DataFrame:
    """Per-session returns of the top-k book by ``score`` and of the equal-weight universe.

    ``preds`` needs symbol, session, ``score`` and ``fwd_ret_1`` (next-session return). Sessions
    without any next-session return (the last one) are left out. Columns: session, n (scored symbols),
    gross, cost, net, bench, excess, turnover.
    """
    df = preds.select("session", "symbol", pl.col(score).alias("s"), "fwd_ret_1").sort("session", "symbol")
    held: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = []
    for (session,), g in df.group_by("session", maintain_order=True):
        syms = g.get_column("symbol").to_list()
        sc = g.get_column("s").to_numpy()
        ret = g.get_column("fwd_ret_1").to_numpy().astype(np.float64)
        ok = np.isfinite(ret)
        if not ok.any():
            continue
        scores = {s: float(v) for s, v, o in zip(syms, sc, ok, strict=True) if o and math.isfinite(v)}
        sel = select_topk(scores, held, k=cfg.top_k, buffer=cfg.hold_buffer, max_changes=cfg.max_changes)
        by_sym = dict(zip(syms, ret, strict=True))
        book = [by_sym[s] for s in sel.target if math.isfinite(by_sym.get(s, math.nan))]
        if not book:
            continue
        turnover = sel.changes / cfg.top_k
        gross = float(np.mean(book))
        cost = turnover * cfg.cost_bps / 1e4
        bench = float(ret[ok].mean())
        rows.append(
            (session, int(ok.sum()), gross, cost, gross - cost, bench, gross - cost - bench, turnover)
        )
        held = sel.target
    schema = ["session", "n", "gross", "cost", "net", "bench", "excess", "turnover"]
    if not rows:
        return pl.DataFrame(schema={c: (pl.Date if c == "session" else pl.Float64) for c in schema})
    return pl.DataFrame(rows, schema=schema, orient="row")


def _mean(daily: pl.DataFrame, column: str) -> float:
    return float(np.mean(daily.get_column(column).to_numpy()))


def portfolio_summary(daily: pl.DataFrame, cfg: TopkConfig | None = None) -> dict[str, Any]:
    """Headline figures of a :func:`topk_returns` frame (None where undefined), with ``top_k`` of
    ``cfg`` when given."""
    if cfg is not None:
        return {**portfolio_summary(daily), "top_k": cfg.top_k}
    if daily.is_empty():
        return {"excess_ann": None, "ir": None, "excess_t": None, "max_drawdown": None, "turnover": None,
                "n_sessions": 0}  # fmt: skip
    ex = daily.get_column("excess").to_numpy()
    sd = float(ex.std(ddof=1)) if ex.size > 1 else float("nan")
    cum = np.cumsum(ex)
    dd = float(np.min(cum - np.maximum.accumulate(np.concatenate([[0.0], cum]))[1:]))
    return {
        "excess_ann": float(ex.mean() * SESSIONS_PER_YEAR),
        "ir": float(ex.mean() / sd * math.sqrt(SESSIONS_PER_YEAR)) if sd > 0 else None,
        "excess_t": hac_t(ex),
        "max_drawdown": dd,
        "turnover": _mean(daily, "turnover"),
        "net_ann": _mean(daily, "net") * SESSIONS_PER_YEAR,
        "bench_ann": _mean(daily, "bench") * SESSIONS_PER_YEAR,
        "n_sessions": int(ex.size),
        "mean_symbols": _mean(daily, "n"),
    }


def equal_weight_summary(daily: pl.DataFrame) -> dict[str, Any]:
    """The equal-weight universe itself as a row of the table (no cost: it is the benchmark)."""
    if daily.is_empty():
        return {"excess_ann": None, "ir": None, "max_drawdown": None, "turnover": None, "n_sessions": 0}
    return {"excess_ann": 0.0, "ir": None, "excess_t": None, "max_drawdown": 0.0, "turnover": 0.0,
            "net_ann": _mean(daily, "bench") * SESSIONS_PER_YEAR,
            "bench_ann": _mean(daily, "bench") * SESSIONS_PER_YEAR,
            "n_sessions": daily.height}  # fmt: skip
