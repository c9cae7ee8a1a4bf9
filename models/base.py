"""The small fit/predict protocol every model follows, and what the models share.

Every model outputs, for each row of a feature matrix, a calibrated probability of its 0/1 label (the
cross-sectional label ``y_out``, "outperforms the universe", in the retrain), and from it:

- **score** (:func:`score_of`): the logit of that probability, the per-(symbol, session) ranking score
  a top-k portfolio sorts by (monotone in the probability, unbounded);
- **expected excess return** (:meth:`BaseModel.expected_excess`): ``slope * (p - 0.5)``, the slope fitted
  by least squares on the validation rows' realized excess returns over the universe (``excess_val``);
  0 without them. A linear, two-sided calibration: a probability of 0.5 expects no excess.

- **probability**: the raw score of the model passed through a Platt calibrator (a logistic regression on
  the logit of the raw score) fitted on the validation rows given to :meth:`Model.fit` (``X_val``,
  ``y_val``). Without validation rows the calibrator is the identity.
- **confidence** has one meaning in stockflow: the calibrated probability itself, P(outperform the
  universe over the label horizon); 0.5 is no edge. (:func:`edge`, ``|2p - 1|``, is the distance from
  a coin flip, used only inside the evaluation; on daily stock data it is small, typically below 0.1:
  information, not a defect.)

Rows are feature rows ordered by (symbol, session). ``groups`` (one label per row, e.g. the symbol)
tells sequence models where one symbol's history ends; row-wise models ignore it.

Artifacts: each model saves its native file(s) plus ``card.json`` (kind, params, feature-set version,
feature names, calibration, training window, metrics, created_at) into one directory;
:func:`models.factory.load_model` reads the card, checks it and dispatches on ``kind``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from stockflow.db.base import utcnow
from stockflow.errors import ModelError
from stockflow.jsonable import jsonable

CARD_FILE = "card.json"
_EPS = 1e-6


@runtime_checkable
class Model(Protocol):
    """What the rest of stockflow relies on (docs/design.md, "Models")."""

    kind: str

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        groups_val: np.ndarray | None = None,
    ) -> None:
        """Train on ``X``/``y``; ``X_val``/``y_val`` drive early stopping, calibration and weights."""
        ...

    def predict_proba(self, X: np.ndarray, *, groups: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(up) per row, shape (n,)."""
        ...

    def save(self, dir: Path) -> None:
        """Write the native artifact(s) and ``card.json`` into ``dir``."""
        ...

    @classmethod
    def load(cls, dir: Path) -> Model:
        """Read a model saved by :meth:`save`; :class:`ModelError` if missing or corrupt."""
        ...

    def card(self) -> dict[str, Any]:
        """The model card: kind, params, feature-set version, training window, metrics, created_at."""
        ...


def edge(p: np.ndarray) -> np.ndarray:
    """Distance of calibrated probabilities from a coin flip, ``|2p - 1|``, in [0, 1] (not "confidence":
    in stockflow that is P(outperform) itself)."""
    return np.clip(np.abs(2.0 * np.asarray(p, dtype=np.float64) - 1.0), 0.0, 1.0)


def score_of(p: np.ndarray) -> np.ndarray:
    """Ranking score of calibrated probabilities: their logit (same order, unbounded)."""
    return _logit(np.asarray(p, dtype=np.float64))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class PlattCalibrator:
    """``p = sigmoid(a * logit(raw) + b)``, fitted by maximum likelihood on validation rows."""

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self.a = float(a)
        self.b = float(b)

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        """Fit on validation scores; identity when the rows cannot support it (one class, too few)."""
        y = np.asarray(y, dtype=np.float64)
        if y.size < 20 or y.min() == y.max():
            return cls()
        from sklearn.linear_model import LogisticRegression

        z = _logit(np.asarray(raw, dtype=np.float64)).reshape(-1, 1)
        # Weak regularization: two parameters, hundreds of rows; C bounds the slope on separable data.
        lr = LogisticRegression(C=100.0, solver="lbfgs", max_iter=200)
        lr.fit(z, y.astype(int))
        return cls(float(lr.coef_[0, 0]), float(lr.intercept_[0]))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(_sigmoid(self.a * _logit(np.asarray(raw, dtype=np.float64)) + self.b))

    def to_dict(self) -> dict[str, float]:
        """Parameters for the card."""
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PlattCalibrator:
        """Inverse of :meth:`to_dict` (identity for None)."""
        return cls(**d) if d else cls()


def check_xy(X: np.ndarray, y: np.ndarray | None = None, *, n_features: int | None = None) -> np.ndarray:
    """Validate a feature matrix (2-D, finite, right width) and its labels; return X as float64."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ModelError(f"feature matrix must be 2-D, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ModelError(f"feature matrix has {X.shape[1]} columns, the model was trained on {n_features}")
    if X.size and not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ModelError(
            f"non-finite feature value at row {bad[0]}, column {bad[1]}; drop warm-up rows first"
        )
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ModelError(f"labels have shape {y.shape}, expected ({X.shape[0]},)")
        if not np.isin(y, (0, 1)).all():
            raise ModelError("labels must be 0/1")
    return X


class BaseModel(ABC):
    """Common parts: feature names, feature-set version, calibration, card and its file."""

    kind: ClassVar[str] = "base"
    #: Parameters used where the caller gives none.
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        feature_names: list[str] | tuple[str, ...],
        *,
        feature_set_version: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.feature_names = list(feature_names)
        self.feature_set_version = feature_set_version
        self.params: dict[str, Any] = {**self.defaults, **(params or {})}
        self.calibrator = PlattCalibrator()
        #: Expected excess return per unit of (p - 0.5), fitted on validation rows (0: not fitted).
        self.excess_slope = 0.0
        self.fitted = False
        self.created_at = utcnow().isoformat()
        #: Filled by the trainer: train_start, train_end, metrics, n_rows ... (shown on the card).
        self.meta: dict[str, Any] = {}

    # -- what subclasses implement ----------------------------------------------------------------

    @abstractmethod
    def _fit_raw(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        groups: np.ndarray | None,
        groups_val: np.ndarray | None,
    ) -> None: ...

    @abstractmethod
    def _predict_raw(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray: ...

    @abstractmethod
    def _save_native(self, dir: Path) -> None: ...

    @abstractmethod
    def _load_native(self, dir: Path) -> None: ...

    # -- the protocol ------------------------------------------------------------------------------

    @property
    def context_rows(self) -> int:
        """Rows of history (same symbol, including the row itself) one prediction looks at."""
        return 1

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        groups_val: np.ndarray | None = None,
        excess_val: np.ndarray | None = None,
    ) -> None:
        """Train, then calibrate on the validation rows when given (and fit the expected-excess slope on
        their realized excess returns ``excess_val`` when given)."""
        X = check_xy(X, y, n_features=len(self.feature_names))
        if X.shape[0] == 0:
            raise ModelError(f"{self.kind}: no training rows")
        if X_val is not None and y_val is not None and len(y_val):
            X_val = check_xy(X_val, y_val, n_features=len(self.feature_names))
        else:
            X_val, y_val, groups_val = None, None, None
        y_val = None if y_val is None else np.asarray(y_val)
        self._fit_raw(X, np.asarray(y), X_val=X_val, y_val=y_val, groups=groups, groups_val=groups_val)
        self.fitted = True
        if X_val is not None and y_val is not None:
            self.calibrator = PlattCalibrator.fit(self._predict_raw(X_val, groups_val), np.asarray(y_val))
            self.fit_excess(self.predict_proba(X_val, groups=groups_val), excess_val)
        else:
            self.calibrator = PlattCalibrator()

    def fit_excess(self, p_val: np.ndarray, excess_val: np.ndarray | None) -> None:
        """Least-squares slope of realized excess return on (p - 0.5) over validation rows (0 without)."""
        self.excess_slope = 0.0
        if excess_val is None or len(excess_val) != len(p_val):
            return
        x = np.asarray(p_val, dtype=np.float64) - 0.5
        r = np.asarray(excess_val, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(r)
        den = float(x[keep] @ x[keep])
        if keep.sum() >= 20 and den > 0:
            self.excess_slope = float(x[keep] @ r[keep]) / den

    def expected_excess(self, p: np.ndarray) -> np.ndarray:
        """Expected excess return over the universe of rows with calibrated probability ``p``."""
        return self.excess_slope * (np.asarray(p, dtype=np.float64) - 0.5)

    def predict_proba(self, X: np.ndarray, *, groups: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(up) per row."""
        if not self.fitted:
            raise ModelError(f"{self.kind} model is not fitted")
        X = check_xy(X, n_features=len(self.feature_names))
        if X.shape[0] == 0:
            return np.zeros(0)
        return np.clip(self.calibrator(self._predict_raw(X, groups)), 0.0, 1.0)

    def predict_raw(self, X: np.ndarray, *, groups: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated score in (0, 1) (for diagnostics)."""
        return self._predict_raw(check_xy(X, n_features=len(self.feature_names)), groups)

    def card(self) -> dict[str, Any]:
        """The model card as plain JSON data."""
        return {
            "kind": self.kind,
            "params": self.params,
            "feature_set_version": self.feature_set_version,
            "feature_names": self.feature_names,
            "calibration": self.calibrator.to_dict(),
            "excess_calibration": {"slope": self.excess_slope},
            "created_at": self.created_at,
            **self.meta,
        }

    def save(self, dir: Path) -> None:
        """Native artifact(s) plus ``card.json``; the card goes last, so its presence marks a whole save."""
        if not self.fitted:
            raise ModelError(f"cannot save an unfitted {self.kind} model")
        dir = Path(dir)
        dir.mkdir(parents=True, exist_ok=True)
        self._save_native(dir)
        (dir / CARD_FILE).write_text(json.dumps(jsonable(self.card()), indent=2, sort_keys=True))

    @classmethod
    def load(cls, dir: Path) -> Self:
        """Load from ``dir``; :class:`ModelError` names the file when it is missing or unreadable."""
        dir = Path(dir)
        card = read_card(dir)
        if card.get("kind") != cls.kind:
            raise ModelError(f"{dir / CARD_FILE}: kind is {card.get('kind')!r}, expected {cls.kind!r}")
        obj = cls(
            card.get("feature_names") or [],
            feature_set_version=str(card.get("feature_set_version")),
            params=card.get("params") or {},
        )
        obj.calibrator = PlattCalibrator.from_dict(card.get("calibration"))
        obj.excess_slope = float((card.get("excess_calibration") or {}).get("slope") or 0.0)
        obj.created_at = card.get("created_at", obj.created_at)
        obj.meta = {k: v for k, v in card.items() if k not in _CARD_CORE}
        try:
            obj._load_native(dir)
        except ModelError:
            raise
        except Exception as err:
            raise ModelError(
                f"{cls.kind} model in {dir} is corrupt or unreadable: {type(err).__name__}: {err}"
            ) from err
        obj.fitted = True
        return obj


_CARD_CORE = {"kind", "params", "feature_set_version", "feature_names", "calibration", "excess_calibration",
              "created_at"}  # fmt: skip


def read_card(dir: Path) -> dict[str, Any]:
    """The ``card.json`` of a saved model; :class:`ModelError` when missing or not a JSON object."""
    path = Path(dir) / CARD_FILE
    if not path.is_file():
        raise ModelError(f"model card {path} is missing: no complete model was saved in {dir}")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelError(f"model card {path} is corrupt: {err}") from err
    if not isinstance(card, dict) or "kind" not in card:
        raise ModelError(f"model card {path} is corrupt: not an object with a 'kind'")
    return card


def require_file(path: Path) -> Path:
    """``path`` if it is a non-empty file, else a :class:`ModelError` naming it."""
    if not path.is_file():
        raise ModelError(f"model file {path} is missing")
    if path.stat().st_size == 0:
        raise ModelError(f"model file {path} is empty (corrupt)")
    return path
