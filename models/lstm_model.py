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


def _call(net: Any, windows: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Forward pass in eager mode, in batches: no tf.function tracing per model (which costs seconds)."""
    out = [
        np.asarray(net(windows[i : i + batch], training=False)).reshape(-1)
        for i in range(0, len(windows), batch)
    ]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def _early_stopping(net: Any, windows: np.ndarray, y: np.ndarray, patience: int) -> Any:
    """A callback that stops when validation log loss has not improved for ``patience`` epochs and
    restores the best weights.

    Keras' own EarlyStopping needs ``validation_data``, which traces a second graph per model; this one
    evaluates the validation windows with an eager forward pass instead (same loss, no tracing).
    """
    keras = _keras()
    y = np.asarray(y, dtype=np.float64)

    class EarlyStopping(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.best = float("inf")
            self.best_weights: list[Any] | None = None
            self.wait = 0

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            p = np.clip(_call(net, windows), 1e-7, 1 - 1e-7)
            loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
            if logs is not None:
                logs["val_loss"] = loss
            if loss < self.best - 1e-6:
                self.best, self.wait = loss, 0
                self.best_weights = net.get_weights()
            else:
                self.wait += 1
                if self.wait >= patience:
                    net.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.best_weights is not None:
                net.set_weights(self.best_weights)

    return EarlyStopping()


class LSTMModel(BaseModel):
    """Keras LSTM classifier over windows of feature rows. ``params`` override :data:`DEFAULT_PARAMS`."""

    kind: ClassVar[str] = "lstm"
    defaults: ClassVar[dict[str, Any]] = DEFAULT_PARAMS

    def __init__(
        self,
        feature_names: list[str] | tuple[str, ...],
        *,
        feature_set_version: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(feature_names, feature_set_version=feature_set_version, params=params)
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
        *,
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
        if X_val is not None and y_val is not None:
            windows_val = self._inputs(X_val, groups_val)
            callbacks.append(_early_stopping(self.net, windows_val, y_val, int(self.params["patience"])))
        hist = self.net.fit(
            self._inputs(X, groups),
            y.astype(np.float32),
            epochs=int(self.params["epochs"]),
            batch_size=int(self.params["batch_size"]),
            callbacks=callbacks,
            shuffle=True,
            verbose=0,
        )
        self.meta["epochs_run"] = len(hist.history.get("loss", []))
        import tensorflow as tf

        # Keras places the network on a GPU by itself when TensorFlow finds one; the card says which.
        self.meta["device"] = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        if callbacks:
            self.meta["best_val_loss"] = callbacks[0].best

    def _predict_raw(self, X: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        return _call(self.net, self._inputs(X, groups))

    def _save_native(self, dir: Path) -> None:
        self.net.save(dir / MODEL_FILE)
        (dir / SCALER_FILE).write_text(json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist()}))

    def _load_native(self, dir: Path) -> None:
        keras = _keras()
        scaler = json.loads(require_file(dir / SCALER_FILE).read_text())
        self.mean = np.asarray(scaler["mean"], dtype=np.float64)
        self.std = np.asarray(scaler["std"], dtype=np.float64)
        if self.mean.shape != (len(self.feature_names),):
            raise ValueError(
                f"{SCALER_FILE} has {self.mean.shape[0]} features, card lists {len(self.feature_names)}"
            )
        self.net = keras.models.load_model(require_file(dir / MODEL_FILE), compile=False)

    def explain(
        self, X: np.ndarray, *, groups: np.ndarray | None = None, rows: Any = None, top: int = 3
    ) -> list[Any]:
        """Gradient x input over the scaled window, probability units; see models/explain.py."""
        from models.explain import lstm_explain

        return lstm_explain(self, X, groups, rows, top)
