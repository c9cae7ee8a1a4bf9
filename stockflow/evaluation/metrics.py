"""Out-of-sample metrics of P(up) predictions: classification quality and cross-sectional IC.

Undefined values (AUC with one class, IC with too few symbols) are ``None``, never NaN, so the dict
stores as JSON in either database.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from stockflow.evaluation.panel import ic_summary, session_ic

#: Edges of the confidence buckets (confidence = |2p - 1|) for the hit-rate table.
CONFIDENCE_EDGES: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 1.0)
_EPS = 1e-15


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """Accuracy (p >= 0.5 means up), ROC AUC, log loss, Brier score, base rate and row count."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    n = y.size
    if n == 0:
        return {"n": 0, "base_rate": None, "accuracy": None, "roc_auc": None, "log_loss": None, "brier": None}
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(y, p) if 0 < y.sum() < n else float("nan")
    return {
        "n": int(n),
        "base_rate": float(y.mean()),
        "accuracy": float(((p >= 0.5) == (y == 1)).mean()),
        "roc_auc": _num(auc),
        "log_loss": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()),
        "brier": float(((p - y) ** 2).mean()),
    }


def hit_rate_by_confidence(
    y: np.ndarray, p: np.ndarray, edges: Sequence[float] = CONFIDENCE_EDGES
) -> list[dict[str, Any]]:
    """Share of correct directions per confidence bucket [lo, hi), the last one closed."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    conf = np.abs(2 * p - 1)
    hit = (p >= 0.5) == (y == 1)
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        m = (conf >= lo) & ((conf <= hi) if last else (conf < hi))
        k = int(m.sum())
        rows.append({"lo": lo, "hi": hi, "n": k, "hit_rate": float(hit[m].mean()) if k else None})
    return rows


def information_coefficient(
    p: np.ndarray,
    fwd_ret: np.ndarray,
    sessions: np.ndarray | Sequence[Any],
    *,
    min_symbols: int = 3,
    label_horizon: int = 1,
) -> dict[str, float | int | None]:
    """Per-session cross-sectional rank IC (Spearman) of predictions with forward returns, summarized
    with the session as the unit (:func:`stockflow.evaluation.panel.ic_summary`): ``ic_t`` is a
    Newey-West t-statistic over the per-session series, never an iid-row one."""
    return ic_summary(session_ic(p, fwd_ret, sessions, min_symbols=min_symbols), label_horizon=label_horizon)


def daily_ic(
    p: np.ndarray, fwd_ret: np.ndarray, sessions: np.ndarray | Sequence[Any], *, min_symbols: int = 3
) -> pl.DataFrame:
    """The per-session rank IC series (session, n, ic) behind :func:`information_coefficient`."""
    return session_ic(p, fwd_ret, sessions, min_symbols=min_symbols).select(
        "session", "n", pl.col("rank_ic").alias("ic")
    )


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    fwd_ret: np.ndarray,
    sessions: np.ndarray | Sequence[Any],
    symbols: np.ndarray | Sequence[Any],
    *,
    label_horizon: int = 1,
    min_symbols: int = 3,
) -> dict[str, Any]:
    """All metrics of one set of out-of-sample predictions (rows with a null label are ignored).

    Keys: n, base_rate, accuracy, roc_auc, log_loss, brier, hit_rate_by_confidence (list of buckets),
    n_symbols, and the session-level IC summary of :func:`stockflow.evaluation.panel.ic_summary`
    (ic_* = rank IC, pearson_ic_*, each with mean, std, IR and Newey-West t; ic_n_sessions,
    ic_positive_share, ic_t_every_h). Pooled classification figures (AUC, log loss) are descriptive
    only: rows of one session are not independent, so no test is built on them.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(fwd_ret, dtype=np.float64)
    sess = np.asarray(sessions)
    syms = np.asarray(symbols)
    keep = np.isfinite(y) & np.isfinite(p) & np.isfinite(r)
    y, p, r, sess, syms = y[keep], p[keep], r[keep], sess[keep], syms[keep]
    out: dict[str, Any] = classification_metrics(y, p)
    out["hit_rate_by_confidence"] = hit_rate_by_confidence(y, p)
    n_symbols = len(np.unique(syms)) if syms.size else 0
    out["n_symbols"] = n_symbols
    daily = (
        session_ic(p, r, sess, min_symbols=min_symbols)
        if n_symbols > 1
        else session_ic(np.zeros(0), np.zeros(0), np.zeros(0, dtype="datetime64[D]"))
    )
    out.update(ic_summary(daily, label_horizon=label_horizon))
    return out
