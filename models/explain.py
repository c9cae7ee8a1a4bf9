"""Per-prediction attributions that are each model's own (the ``explain`` method of every model).

Each method answers "which features moved this prediction, and by how much", in the model's own terms,
and says which method and unit it used:

- **LightGBM**: ``Booster.predict(..., pred_contrib=True)``: exact TreeSHAP values of the raw score, in
  log-odds; they sum, with the expected value, to the raw log-odds of the row.
- **momentum**: the model's single term ``w * (x - center) / scale`` of its own column, in log-odds
  (every other feature contributes exactly 0: the model does not read it).
- **LSTM**: gradient x input of the network's P(up) with respect to its scaled input window, summed over
  the window's time steps per feature, in probability units (a first-order attribution relative to an
  all-zero, i.e. average, input; stated as such, not a Shapley value).
- **ensemble**: each member's attributions moved to probability units (log-odds x p(1-p), first order
  at the member's prediction), weighted by the member's ensemble weight, and summed per feature.

Calibration (Platt) is monotone and applied after the raw score, so it does not change the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_ODDS = "log-odds"
PROBABILITY = "probability"


@dataclass(frozen=True, slots=True)
class Attribution:
    """One feature's contribution to one prediction, in ``Explanation.unit``."""

    feature: str
    value: float
    contribution: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one row got its prediction: the top attributions by size, the method and the unit."""

    method: str
    unit: str
    base: float
    attributions: tuple[Attribution, ...]


def _top(names: list[str], values: np.ndarray, contrib: np.ndarray, top: int) -> tuple[Attribution, ...]:
    order = sorted(
        (i for i in range(len(names)) if np.isfinite(contrib[i]) and contrib[i] != 0.0),
        key=lambda i: (-abs(float(contrib[i])), names[i]),
    )
    return tuple(Attribution(names[i], float(values[i]), float(contrib[i])) for i in order[:top])


def _rows(n: int, rows: Any) -> np.ndarray:
    return np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)


def lightgbm_explain(model: Any, X: np.ndarray, rows: Any = None, top: int = 3) -> list[Explanation]:
    """TreeSHAP contributions of a fitted LightGBM model (module docstring)."""
    idx = _rows(len(X), rows)
    it = model.booster.best_iteration or None
    contrib = np.asarray(model.booster.predict(X[idx], num_iteration=it, pred_contrib=True), dtype=np.float64)
    names = list(model.feature_names)
    return [
        Explanation(
            "LightGBM pred_contrib (TreeSHAP)", LOG_ODDS, float(c[-1]), _top(names, X[i], c[:-1], top)
        )
        for i, c in zip(idx, contrib, strict=True)
    ]


def momentum_explain(model: Any, X: np.ndarray, rows: Any = None, top: int = 3) -> list[Explanation]:
    """The momentum model's own term for its column (module docstring)."""
    idx = _rows(len(X), rows)
    names = list(model.feature_names)
    out = []
    for i in idx:
        contrib = np.zeros(len(names))
        contrib[model.col] = model.w * (X[i, model.col] - model.center) / model.scale
        out.append(
            Explanation(
                f"momentum model's own term w*z({names[model.col]})", LOG_ODDS, float(model.b),
                _top(names, X[i], contrib, top),
            )
        )  # fmt: skip
    return out


def lstm_explain(
    model: Any, X: np.ndarray, groups: np.ndarray | None, rows: Any = None, top: int = 3
) -> list[Explanation]:
    """Gradient x input over the LSTM's scaled input window (module docstring)."""
    import tensorflow as tf

    idx = _rows(len(X), rows)
    windows = model._inputs(X, groups)[idx].astype(np.float32)
    inputs = tf.convert_to_tensor(windows)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        p = model.net(inputs, training=False)
    grads = tape.gradient(p, inputs).numpy()
    contrib = (grads * windows).sum(axis=1)  # (rows, features)
    names = list(model.feature_names)
    return [
        Explanation("LSTM gradient x input over the window", PROBABILITY, 0.0, _top(names, X[i], c, top))
        for i, c in zip(idx, contrib, strict=True)
    ]


def ensemble_explain(
    model: Any, X: np.ndarray, groups: np.ndarray | None, rows: Any = None, top: int = 3
) -> list[Explanation]:
    """Members' attributions in probability units, weighted (module docstring)."""
    idx = _rows(len(X), rows)
    names = list(model.feature_names)
    total = np.zeros((len(idx), len(names)))
    for member, weight in zip(model.members, model.weights, strict=True):
        expl = member.explain(X, groups=groups, rows=idx, top=len(names))
        p = member.predict_raw(X, groups=groups)[idx]
        for r, e in enumerate(expl):
            scale = p[r] * (1.0 - p[r]) if e.unit == LOG_ODDS else 1.0
            for a in e.attributions:
                total[r, names.index(a.feature)] += float(weight) * scale * a.contribution
    kinds = "+".join(m.kind for m in model.members)
    return [
        Explanation(
            f"ensemble ({kinds}): weighted member attributions", PROBABILITY, 0.0, _top(names, X[i], c, top)
        )
        for i, c in zip(idx, total, strict=True)
    ]
