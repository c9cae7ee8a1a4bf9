"""The simplest member: a one-feature logistic regression on past return (momentum or reversal).

The training data decide the sign, so the same member expresses momentum or short-term reversal,
whichever the training window showed. Saved as JSON (its whole state is three numbers and a name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models.base import BaseModel, require_file
from stockflow.errors import ModelError

MODEL_FILE = "momentum.json"
DEFAULT_PARAMS: dict[str, Any] = {"column": "ret_20", "C": 1.0}


class MomentumModel(BaseModel):
    """P(up) = sigmoid(w * standardized(column) + b), ``column`` a past-return feature."""

    kind: ClassVar[str] = "momentum"
    defaults: ClassVar[dict[str, Any]] = DEFAULT_PARAMS

    def __init__(
        self,
        feature_names: list[str] | tuple[str, ...],
        *,
        feature_set_version: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(feature_names, feature_set_version=feature_set_version, params=params)
        column = self.params["column"]
        if column not in self.feature_names:
            raise ModelError(f"momentum column {column!r} is not among the features {self.feature_names}")
        self.col = self.feature_names.index(column)
        self.center = 0.0
        self.scale = 1.0
        self.w = 0.0
        self.b = 0.0

    def _fit_raw(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        groups: np.ndarray | None,
        groups_val: np.ndarray | None,
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        x = X[:, self.col]
        self.center = float(np.mean(x))
        sd = float(np.std(x))
        self.scale = sd if sd > 1e-12 else 1.0
        if np.unique(y).size < 2:
            # One class only: predict its frequency, no slope.
            self.w, self.b = 0.0, float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))
            return
        lr = LogisticRegression(C=float(self.params["C"]), solver="lbfgs", max_iter=200)
        lr.fit(((x - self.center) / self.scale).reshape(-1, 1), y.astype(int))
        self.w, self.b = float(lr.coef_[0, 0]), float(lr.intercept_[0])

    def _predict_raw(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        z = self.w * (X[:, self.col] - self.center) / self.scale + self.b
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def _save_native(self, dir: Path) -> None:
        state = {"center": self.center, "scale": self.scale, "w": self.w, "b": self.b}
        (dir / MODEL_FILE).write_text(json.dumps(state))

    def _load_native(self, dir: Path) -> None:
        state = json.loads(require_file(dir / MODEL_FILE).read_text())
        self.center, self.scale = float(state["center"]), float(state["scale"])
        self.w, self.b = float(state["w"]), float(state["b"])

    def explain(
        self, X: np.ndarray, *, groups: np.ndarray | None = None, rows: Any = None, top: int = 3
    ) -> list[Any]:
        """The model's own term for its column, log-odds; see models/explain.py."""
        from models.explain import momentum_explain

        return momentum_explain(self, X, rows, top)
