"""A small Keras LSTM over a window of the last ``window`` feature rows of the same symbol.

- Scaling: mean and standard deviation of the *training* rows only (stored in ``scaler.json``), values
  clipped to +-5 standard deviations so one outlier cannot saturate the cells.
- Windows: for row i of a symbol the input is rows i-window+1 .. i of that symbol; rows before the
  symbol's first row are zeros (the training mean after scaling). Rows must be ordered by symbol and
  session; ``groups`` names the symbol of each row (one sequence when omitted).
- Training: Adam, binary cross-entropy, early stopping on validation loss with the best weights restored;
  the default size (16 units, 15 epochs) trains in seconds on 2 CPU cores. TensorFlow places it on a
  GPU by itself when it finds one. Seeds are fixed, so the same data give the same weights on CPU.
- Saved as ``model.keras`` (Keras native format).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models.base import BaseModel, require_file

MODEL_FILE = "model.keras"
SCALER_FILE = "scaler.json"

DEFAULT_PARAMS: dict[str, Any] = {
    "window": 20,
    "units": 16,
    "epochs": 15,
    "batch_size": 256,
    "patience": 3,
    "dropout": 0.1,
    "learning_rate": 0.002,
    "seed": 42,
}


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def make_windows(X: np.ndarray, groups: np.ndarray | None, window: int) -> np.ndarray:
    """(n, window, f) float32 windows, one per row, never crossing from one group into another."""
    X = np.asarray(X, dtype=np.float32)
    n, f = X.shape
    out = np.zeros((n, window, f), dtype=np.float32)
    if n == 0:
        return out
    if groups is None:
        bounds = [(0, n)]
    else:
        g = np.asarray(groups)
        change = np.flatnonzero(g[1:] != g[:-1]) + 1
        starts = np.concatenate(([0], change))
        stops = np.concatenate((change, [n]))
        bounds = list(zip(starts.tolist(), stops.tolist(), strict=True))
    for a, b in bounds:
        padded = np.concatenate((np.zeros((window - 1, f), dtype=np.float32), X[a:b]), axis=0)
        # sliding_window_view gives (rows, f, window); move the time axis before the features.
        view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
        out[a:b] = np.moveaxis(view, -1, 1)
    return out


class LSTMModel(BaseModel):
    """Keras LSTM classifier over windows of feature rows. ``params`` override :data:`DEFAULT_PARAMS`."""

    kind: ClassVar[str] = "lstm"

    def __init__(
        self,
        feature_names: list[str] | tuple[str, ...],
        *,
        feature_set_version: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            feature_names, feature_set_version=feature_set_version, params={**DEFAULT_PARAMS, **(params or {})}
        )
        self.net: Any = None
        self.mean = np.zeros(len(self.feature_names))
        self.std = np.ones(len(self.feature_names))

    @property
    def context_rows(self) -> int:
        """The window length: a prediction reads this many rows of the symbol."""
        return int(self.params["window"])

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return np.clip((X - self.mean) / self.std, -5.0, 5.0)

    def _inputs(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        return make_windows(self._scale(X), groups, self.context_rows)

    def _build(self) -> Any:
        keras = _keras()
        p = self.params
        net = keras.Sequential(
            [
                keras.Input((self.context_rows, len(self.feature_names))),
                keras.layers.LSTM(int(p["units"])),
                keras.layers.Dropout(float(p["dropout"])),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        net.compile(optimizer=keras.optimizers.Adam(float(p["learning_rate"])), loss="binary_crossentropy")
        return net

    def _fit_raw(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        groups: np.ndarray | None,
        groups_val: np.ndarray | None,
    ) -> None:
        keras = _keras()
        # Statistics of the training window only: validation and test rows never leak into the scaling.
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)
        keras.utils.set_random_seed(int(self.params["seed"]))
        self.net = self._build()
        callbacks = []
        validation = None
        if X_val is not None and y_val is not None:
            validation = (self._inputs(X_val, groups_val), y_val.astype(np.float32))
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=int(self.params["patience"]), restore_best_weights=True
                )
            )
        hist = self.net.fit(
            self._inputs(X, groups),
            y.astype(np.float32),
            epochs=int(self.params["epochs"]),
            batch_size=int(self.params["batch_size"]),
            validation_data=validation,
            callbacks=callbacks,
            shuffle=True,
            verbose=0,
        )
        self.meta["epochs_run"] = len(hist.history.get("loss", []))

    def _predict_raw(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        windows = self._inputs(X, groups)
        out = self.net.predict(windows, batch_size=4096, verbose=0)
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def _save_native(self, dir: Path) -> None:
        self.net.save(dir / MODEL_FILE)
        (dir / SCALER_FILE).write_text(json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist()}))

    def _load_native(self, dir: Path) -> None:
        keras = _keras()
        scaler = json.loads(require_file(dir / SCALER_FILE).read_text())
        self.mean = np.asarray(scaler["mean"], dtype=np.float64)
        self.std = np.asarray(scaler["std"], dtype=np.float64)
        if self.mean.shape != (len(self.feature_names),):
            raise ValueError(f"{SCALER_FILE} has {self.mean.shape[0]} features, card lists {len(self.feature_names)}")
        self.net = keras.models.load_model(require_file(dir / MODEL_FILE), compile=False)
