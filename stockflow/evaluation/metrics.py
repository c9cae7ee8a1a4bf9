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
) -> dict[str, float | int | None]:
    """Per-session Spearman correlation of predictions with forward returns across symbols.

    Sessions with fewer than ``min_symbols`` rows, or where predictions or returns are all equal, are
    left out. Returns the mean, standard deviation and t-statistic (mean / (std / sqrt(n))) of the daily
    ICs, their count and the share of positive days. With a label horizon h > 1, consecutive daily ICs
    overlap and the t-statistic is optimistic; ``ic_t_every_h`` in :func:`evaluate` corrects for it.
    """
    ics = daily_ic(p, fwd_ret, sessions, min_symbols=min_symbols).get_column("ic").to_numpy()
    return _ic_summary(ics)


def _ic_summary(ics: np.ndarray) -> dict[str, float | int | None]:
    n = int(ics.size)
    if n == 0:
        return {"ic_mean": None, "ic_std": None, "ic_t": None, "ic_n_sessions": 0, "ic_positive_share": None}
    mean = float(ics.mean())
    std = float(ics.std(ddof=1)) if n > 1 else float("nan")
    t = mean / (std / math.sqrt(n)) if n > 1 and std > 0 else float("nan")
    return {
        "ic_mean": mean,
        "ic_std": _num(std),
        "ic_t": _num(t),
        "ic_n_sessions": n,
        "ic_positive_share": float((ics > 0).mean()),
    }


def daily_ic(
    p: np.ndarray, fwd_ret: np.ndarray, sessions: np.ndarray | Sequence[Any], *, min_symbols: int = 3
) -> pl.DataFrame:
    """The per-session IC series (session, n, ic) behind :func:`information_coefficient`."""
    df = pl.DataFrame(
        {
            "session": pl.Series(sessions),
            "p": np.asarray(p, dtype=np.float64),
            "r": np.asarray(fwd_ret, np.float64),
        }
    ).filter(pl.col("p").is_not_nan() & pl.col("r").is_not_nan())
    return (
        df.group_by("session")
        .agg(
            pl.len().alias("n"),
            pl.col("p").n_unique().alias("np"),
            pl.col("r").n_unique().alias("nr"),
            pl.corr("p", "r", method="spearman").alias("ic"),
        )
        .filter(
            (pl.col("n") >= min_symbols) & (pl.col("np") > 1) & (pl.col("nr") > 1) & pl.col("ic").is_not_nan()
        )
        .select("session", "n", "ic")
        .sort("session")
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
    n_symbols, and when more than one symbol is present ic_mean, ic_std, ic_t, ic_n_sessions,
    ic_positive_share and ic_t_every_h (t-statistic on every h-th session, free of label overlap).
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
    if n_symbols > 1:
        daily = daily_ic(p, r, sess, min_symbols=min_symbols)
        ics = daily.get_column("ic").to_numpy()
        out.update(_ic_summary(ics))
        out["ic_t_every_h"] = _ic_summary(ics[::label_horizon])["ic_t"] if label_horizon > 1 else out["ic_t"]
    else:
        out.update(_ic_summary(np.array([])))
        out["ic_t_every_h"] = None
    return out
