"""The single-model kinds an ensemble is made of, and the card-checked loader every kind shares.

:mod:`models.factory` adds the ensemble on top of these; :mod:`models.ensemble` builds and loads its
members from here, so neither of the two imports the other's module back (no import cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.base import BaseModel, read_card
from models.lightgbm_model import LightGBMModel
from models.lstm_model import LSTMModel
from models.momentum import MomentumModel
from stockflow.errors import ModelError

MEMBER_CLASSES: dict[str, type[BaseModel]] = {
    cls.kind: cls for cls in (LightGBMModel, LSTMModel, MomentumModel)
}


def class_of(kind: str, classes: Mapping[str, type[BaseModel]] = MEMBER_CLASSES) -> type[BaseModel]:
    """The class of ``kind`` in ``classes``; :class:`ModelError` listing the known kinds otherwise."""
    try:
        return classes[kind]
    except KeyError:
        raise ModelError(f"unknown model kind {kind!r}; known kinds: {', '.join(classes)}") from None


def make_member(
    kind: str,
    feature_names: list[str] | tuple[str, ...],
    *,
    feature_set_version: str,
    params: dict[str, Any] | None = None,
) -> BaseModel:
    """A fresh, unfitted single model of ``kind`` (not an ensemble)."""
    return class_of(kind)(feature_names, feature_set_version=feature_set_version, params=params)


def member_params(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` completed with the single kind's defaults."""
    return {**class_of(kind).defaults, **dict(params or {})}


def load_saved(
    dir: Path,
    *,
    feature_set_version: str | None = None,
    classes: Mapping[str, type[BaseModel]] = MEMBER_CLASSES,
) -> BaseModel:
    """Load the model saved in ``dir`` whatever its kind (among ``classes``).

    Raises :class:`ModelError` when the directory, card or native file is missing or corrupt, or when
    ``feature_set_version`` is given and differs from the version the model was trained on.
    """
    dir = Path(dir)
    if not dir.is_dir():
        raise ModelError(f"model directory {dir} does not exist")
    card = read_card(dir)
    trained_on = card.get("feature_set_version")
    if feature_set_version is not None and trained_on != feature_set_version:
        raise ModelError(
            f"model in {dir} was trained on feature set {trained_on!r} but the features are "
            f"{feature_set_version!r}; retrain it (stockflow retrain) or use matching features"
        )
    return class_of(str(card["kind"]), classes).load(dir)
