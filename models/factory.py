"""Build models by kind, derive their parameters from settings, and load any saved model safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.base import BaseModel
from models.ensemble import EnsembleModel
from models.members import MEMBER_CLASSES, class_of, load_saved, member_params
from stockflow.choices import MEMBER_KINDS
from stockflow.config.sections import ModelSettings

MODEL_CLASSES: dict[str, type[BaseModel]] = {**MEMBER_CLASSES, EnsembleModel.kind: EnsembleModel}


def model_class(kind: str) -> type[BaseModel]:
    """The class of ``kind``; :class:`ModelError` listing the known kinds otherwise."""
    return class_of(kind, MODEL_CLASSES)


def make_model(
    kind: str,
    feature_names: list[str] | tuple[str, ...],
    *,
    feature_set_version: str,
    params: dict[str, Any] | None = None,
) -> BaseModel:
    """A fresh, unfitted model of ``kind``."""
    return model_class(kind)(feature_names, feature_set_version=feature_set_version, params=params)


def momentum_feature(column: str, feature_columns: tuple[str, ...] | list[str] | None) -> str:
    """The feature the momentum model reads: ``column`` when the feature set has it, else the
    Alpha158-style equivalent of a ``ret_N`` column (``ROCN`` = close[t-N]/close[t]: the same
    information; the model learns the sign)."""
    if feature_columns is None or column in feature_columns:
        return column
    alt = f"ROC{column.removeprefix('ret_')}"
    return alt if column.startswith("ret_") and alt in feature_columns else column


def params_from_settings(
    kind: str, ms: ModelSettings, feature_columns: tuple[str, ...] | list[str] | None = None
) -> dict[str, Any]:
    """The hyper-parameters of ``kind`` as configured in ``settings.models`` (``feature_columns``: the
    feature set's columns, so the momentum model reads a column the set has)."""
    if kind == "lightgbm":
        return {
            "num_boost_round": ms.lgbm_num_boost_round,
            "learning_rate": ms.lgbm_learning_rate,
            "num_leaves": ms.lgbm_num_leaves,
            "min_data_in_leaf": ms.lgbm_min_data_in_leaf,
            "num_threads": ms.n_threads,
            "seed": ms.seed,
        }
    if kind == "lstm":
        return {
            "window": ms.lstm_window,
            "units": ms.lstm_units,
            "epochs": ms.lstm_epochs,
            "batch_size": ms.lstm_batch_size,
            "patience": ms.lstm_patience,
            "seed": ms.seed,
        }
    if kind == "momentum":
        return {"column": momentum_feature(ms.momentum_column, feature_columns)}
    if kind == "ensemble":
        return {"members": {k: params_from_settings(k, ms, feature_columns) for k in ms.ensemble_members}}
    model_class(kind)
    return {}


def effective_params(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` completed with the kind's defaults: what the built model really uses, so recipes that
    would train identical models compare equal."""
    params = dict(params or {})
    if kind == "ensemble":
        members = params.get("members") or {k: {} for k in MEMBER_KINDS}
        if isinstance(members, list | tuple):
            members = {k: {} for k in members}
        return {"members": {k: effective_params(k, p) for k, p in members.items()}}
    model_class(kind)
    return member_params(kind, params)


def load_model(dir: Path, *, feature_set_version: str | None = None) -> BaseModel:
    """Load the model saved in ``dir`` whatever its kind (see :func:`models.members.load_saved`)."""
    return load_saved(dir, feature_set_version=feature_set_version, classes=MODEL_CLASSES)
