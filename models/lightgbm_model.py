"""Gradient-boosted trees (LightGBM) on one feature row; saved as LightGBM's native text model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models.base import BaseModel, require_file

MODEL_FILE = "model.txt"

#: Defaults chosen for noisy daily data: shallow trees, strong row/feature subsampling, early stopping.
DEFAULT_PARAMS: dict[str, Any] = {
    "num_boost_round": 300,
    "early_stopping_rounds": 30,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.7,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "num_threads": 1,  # see settings.models.n_threads: OpenMP threads spin badly on busy cores
    "seed": 42,
}


class LightGBMModel(BaseModel):
    """Binary LightGBM classifier. ``params`` override :data:`DEFAULT_PARAMS`."""

    kind: ClassVar[str] = "lightgbm"
    defaults: ClassVar[dict[str, Any]] = DEFAULT_PARAMS

    def __init__(
        self,
        feature_names: list[str] | tuple[str, ...],
        *,
        feature_set_version: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(feature_names, feature_set_version=feature_set_version, params=params)
        self.booster: Any = None

    def _lgb_params(self) -> dict[str, Any]:
        p = {k: v for k, v in self.params.items() if k not in ("num_boost_round", "early_stopping_rounds")}
        # deterministic + row-wise histograms: the same data and seed give the same trees on any machine.
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "verbosity": -1,
            "deterministic": True,
            "force_row_wise": True,
            **p,
        }

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
        import lightgbm as lgb

        train = lgb.Dataset(X, label=y, feature_name=self.feature_names, free_raw_data=True)
        callbacks: list[Any] = []
        valid_sets = []
        if X_val is not None and y_val is not None:
            valid_sets = [lgb.Dataset(X_val, label=y_val, reference=train)]
            callbacks.append(lgb.early_stopping(int(self.params["early_stopping_rounds"]), verbose=False))
        self.booster = lgb.train(
            self._lgb_params(),
            train,
            num_boost_round=int(self.params["num_boost_round"]),
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        self.meta["best_iteration"] = int(self.booster.best_iteration or self.booster.current_iteration())
        self.meta["feature_importance"] = self.feature_importance()

    def _predict_raw(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        it = self.booster.best_iteration or None
        return np.asarray(self.booster.predict(X, num_iteration=it), dtype=np.float64)

    def _save_native(self, dir: Path) -> None:
        self.booster.save_model(str(dir / MODEL_FILE), num_iteration=self.booster.best_iteration or None)

    def _load_native(self, dir: Path) -> None:
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=str(require_file(dir / MODEL_FILE)))
        if self.booster.num_feature() != len(self.feature_names):
            raise ValueError(
                f"{MODEL_FILE} has {self.booster.num_feature()} features, "
                f"card lists {len(self.feature_names)}"
            )

    def feature_importance(self) -> dict[str, float]:
        """Gain importance per feature (for the model card)."""
        gains = self.booster.feature_importance(importance_type="gain")
        return {n: float(g) for n, g in zip(self.feature_names, gains, strict=True)}

    def explain(
        self, X: np.ndarray, *, groups: np.ndarray | None = None, rows: Any = None, top: int = 3
    ) -> list[Any]:
        """Per-prediction TreeSHAP contributions (``pred_contrib``), log-odds; see models/explain.py."""
        from models.explain import lightgbm_explain

        return lightgbm_explain(self, X, rows, top)
