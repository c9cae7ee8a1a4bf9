"""Weighted average of member probabilities, weights learned on the validation rows.

The weights minimize the log loss of ``sum_k w_k p_k`` on the validation split (w on the simplex,
optimized through a softmax), a small L2 pull toward equal weights keeps them stable when members agree.
Without validation rows the weights are equal. Members are saved in ``members/<kind>/`` in their own
native formats; the weights in ``ensemble.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models.base import BaseModel, PlattCalibrator, require_file
from models.members import load_saved, make_member, member_params
from stockflow.choices import MEMBER_KINDS
from stockflow.errors import ModelError

MODEL_FILE = "ensemble.json"
MEMBERS_DIR = "members"


def learn_weights(P: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Simplex weights minimizing the log loss of ``P @ w`` (P: rows x members of probabilities)."""
    from scipy.optimize import minimize

    k = P.shape[1]
    if k == 1 or y.size == 0 or y.min() == y.max():
        return np.full(k, 1.0 / k)
    P = np.clip(P, 1e-6, 1 - 1e-6)
    y = y.astype(np.float64)

    def loss(theta: np.ndarray) -> float:
        w = np.exp(theta - theta.max())
        w /= w.sum()
        p = np.clip(P @ w, 1e-6, 1 - 1e-6)
        ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        return float(ll + l2 * np.sum((w - 1.0 / k) ** 2))

    res = minimize(
        loss, np.zeros(k), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 2000}
    )
    w = np.exp(res.x - res.x.max())
    return np.asarray(w / w.sum())


class EnsembleModel(BaseModel):
    """Ensemble of member models; ``params = {"members": {kind: member params}}``."""

    kind: ClassVar[str] = "ensemble"

    def __init__(
        self,
        feature_names: list[str] | tuple[str, ...],
        *,
        feature_set_version: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        params = dict(params or {})
        members = params.get("members") or {k: {} for k in MEMBER_KINDS}
        if isinstance(members, list | tuple):
            members = {k: {} for k in members}
        if "ensemble" in members or not members:
            raise ModelError(f"ensemble members must be non-ensemble kinds, got {list(members)}")
        members = {k: member_params(k, p) for k, p in members.items()}
        super().__init__(feature_names, feature_set_version=feature_set_version, params={"members": members})
        self.members: list[BaseModel] = []
        self.weights = np.zeros(0)

    @property
    def context_rows(self) -> int:
        """The longest history any member reads."""
        return max((m.context_rows for m in self.members), default=1)

    def _make_members(self) -> list[BaseModel]:
        return [
            make_member(kind, self.feature_names, feature_set_version=self.feature_set_version, params=p)
            for kind, p in self.params["members"].items()
        ]

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
        self.members = self._make_members()  # fitted below, each with its own calibration
        for m in self.members:
            m.fit(X, y, X_val=X_val, y_val=y_val, groups=groups, groups_val=groups_val)
        self._learn(X_val, y_val, groups_val)

    def _learn(
        self, X_val: np.ndarray | None, y_val: np.ndarray | None, groups_val: np.ndarray | None
    ) -> None:
        if X_val is None or y_val is None or len(y_val) == 0:
            self.weights = np.full(len(self.members), 1.0 / len(self.members))
        else:
            P = np.column_stack([m.predict_proba(X_val, groups=groups_val) for m in self.members])
            self.weights = learn_weights(P, np.asarray(y_val))
        self.meta["weights"] = {m.kind: float(w) for m, w in zip(self.members, self.weights, strict=True)}
        # Importance of the tree member scaled by its weight (the other members have none to report).
        imp: dict[str, float] = {}
        for m, w in zip(self.members, self.weights, strict=True):
            for k, v in (m.meta.get("feature_importance") or {}).items():
                imp[k] = imp.get(k, 0.0) + float(w) * float(v)
        if imp:
            self.meta["feature_importance"] = imp

    @classmethod
    def from_members(
        cls,
        members: list[BaseModel],
        *,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        groups_val: np.ndarray | None = None,
        excess_val: np.ndarray | None = None,
    ) -> EnsembleModel:
        """Combine members already fitted on the same training split (what :meth:`fit` would do, without
        training them twice); weights and calibration come from the validation rows."""
        if not members:
            raise ModelError("an ensemble needs at least one member")
        first = members[0]
        ens = cls(
            first.feature_names,
            feature_set_version=first.feature_set_version,
            params={"members": {m.kind: m.params for m in members}},
        )
        ens.members = list(members)
        ens._learn(X_val, y_val, groups_val)
        ens.fitted = True
        if X_val is not None and y_val is not None and len(y_val):
            ens.calibrator = PlattCalibrator.fit(ens._predict_raw(X_val, groups_val), np.asarray(y_val))
            ens.fit_excess(ens.predict_proba(X_val, groups=groups_val), excess_val)
        return ens

    def _predict_raw(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        P = np.column_stack([m.predict_proba(X, groups=groups) for m in self.members])
        return np.asarray(P @ self.weights)

    def _save_native(self, dir: Path) -> None:
        for m in self.members:
            m.save(dir / MEMBERS_DIR / m.kind)
        state = {"members": [m.kind for m in self.members], "weights": self.weights.tolist()}
        (dir / MODEL_FILE).write_text(json.dumps(state))

    def _load_native(self, dir: Path) -> None:
        state = json.loads(require_file(dir / MODEL_FILE).read_text())
        self.members = [
            load_saved(dir / MEMBERS_DIR / kind, feature_set_version=self.feature_set_version)
            for kind in state["members"]
        ]
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        if self.weights.shape != (len(self.members),):
            raise ValueError(f"{MODEL_FILE}: {len(self.weights)} weights for {len(self.members)} members")

    def explain(
        self, X: np.ndarray, *, groups: np.ndarray | None = None, rows: Any = None, top: int = 3
    ) -> list[Any]:
        """Members' attributions, weighted, probability units; see models/explain.py."""
        from models.explain import ensemble_explain

        return ensemble_explain(self, X, groups, rows, top)
