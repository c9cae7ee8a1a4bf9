"""The models themselves: fit, calibrated output, native save/load, and refusal of bad artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.base import CARD_FILE, PlattCalibrator, edge
from models.ensemble import learn_weights
from models.factory import load_model, make_model
from models.lstm_model import make_windows
from stockflow.errors import ModelError

TINY_LSTM = {"epochs": 1, "window": 5, "units": 4, "batch_size": 512}


def _fit(kind: str, a: dict[str, Any], params: dict[str, Any] | None = None) -> Any:
    m = make_model(kind, a["names"], feature_set_version=a["version"], params=params)
    m.fit(
        a["X_train"],
        a["y_train"],
        X_val=a["X_val"],
        y_val=a["y_val"],
        groups=a["g_train"],
        groups_val=a["g_val"],
    )
    return m


@pytest.fixture(scope="module")
def lstm_model(feature_arrays: dict[str, Any]) -> Any:
    """One tiny fitted LSTM shared by the tests that need one (each fit costs seconds of tracing)."""
    return _fit("lstm", feature_arrays, TINY_LSTM)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("lightgbm", None),
        ("momentum", None),
        ("lstm", TINY_LSTM),
        ("ensemble", {"members": {"lightgbm": {}, "momentum": {}}}),
    ],
)
def test_save_load_roundtrip(
    kind: str, params: dict[str, Any] | None, feature_arrays: dict[str, Any], tmp_path: Path, request: Any
) -> None:
    a = feature_arrays
    model = request.getfixturevalue("lstm_model") if kind == "lstm" else _fit(kind, a, params)
    p = model.predict_proba(a["X_test"], groups=a["g_test"])
    assert p.shape == (len(a["y_test"]),) and np.all((p >= 0) & (p <= 1))
    c = edge(p)
    assert np.all((c >= 0) & (c <= 1))
    model.meta["train_start"] = "2011-01-03"
    model.save(tmp_path / kind)
    loaded = load_model(tmp_path / kind, feature_set_version=a["version"])
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.predict_proba(a["X_test"], groups=a["g_test"]), p, rtol=0, atol=1e-6)
    card = json.loads((tmp_path / kind / CARD_FILE).read_text())
    assert card["kind"] == kind and card["feature_set_version"] == a["version"]
    assert card["feature_names"] == a["names"] and card["train_start"] == "2011-01-03" and card["created_at"]


def test_lightgbm_learns_planted_reversal(feature_arrays: dict[str, Any]) -> None:
    a = feature_arrays
    p = _fit("lightgbm", a).predict_proba(a["X_test"])
    from sklearn.metrics import roc_auc_score

    # The synthetic panel has a one-day reversal of 0.3: a model that learned it ranks well above chance.
    assert roc_auc_score(a["y_test"], p) > 0.58


def test_missing_and_corrupt_files_are_model_errors(feature_arrays: dict[str, Any], tmp_path: Path) -> None:
    a = feature_arrays
    _fit("lightgbm", a).save(tmp_path / "m")
    shutil.copytree(tmp_path / "m", tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.txt").write_text("tree\nnot a lightgbm model\n")
    with pytest.raises(ModelError, match="corrupt or unreadable"):
        load_model(tmp_path / "corrupt")
    (tmp_path / "m" / "model.txt").unlink()
    with pytest.raises(ModelError, match=r"model file .*model\.txt is missing"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / CARD_FILE).write_text("{not json")
    with pytest.raises(ModelError, match=r"card .* is corrupt"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_corrupt_keras_file_is_a_model_error(lstm_model: Any, tmp_path: Path) -> None:
    lstm_model.save(tmp_path / "lstm")
    (tmp_path / "lstm" / "model.keras").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(ModelError, match=r"lstm model in .* is corrupt"):
        load_model(tmp_path / "lstm")


def test_feature_set_version_mismatch_is_refused(feature_arrays: dict[str, Any], tmp_path: Path) -> None:
    _fit("momentum", feature_arrays).save(tmp_path / "m")
    with pytest.raises(ModelError, match=r"trained on feature set 'ta-v1' but the features are 'ta-v2'"):
        load_model(tmp_path / "m", feature_set_version="ta-v2")


def test_wrong_feature_width_is_refused(feature_arrays: dict[str, Any]) -> None:
    model = _fit("momentum", feature_arrays)
    with pytest.raises(ModelError, match="columns, the model was trained on"):
        model.predict_proba(feature_arrays["X_test"][:, :5])
    bad = feature_arrays["X_test"].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ModelError, match="non-finite feature value at row 3"):
        model.predict_proba(bad)


def test_lstm_windows_stay_within_a_symbol() -> None:
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    groups = np.array(["A", "A", "A", "B", "B", "B"])
    w = make_windows(X, groups, 3)
    # Row 3 is B's first row: only zeros before it, never A's rows.
    np.testing.assert_array_equal(w[3], [[0, 0], [0, 0], [6, 7]])
    np.testing.assert_array_equal(w[2], [[0, 1], [2, 3], [4, 5]])


def test_lstm_scales_with_training_statistics_only(lstm_model: Any, feature_arrays: dict[str, Any]) -> None:
    a = feature_arrays
    np.testing.assert_allclose(lstm_model.mean, a["X_train"].mean(axis=0))
    assert not np.allclose(lstm_model.mean, np.concatenate([a["X_train"], a["X_val"]]).mean(axis=0))


def test_platt_calibration_and_identity_fallback() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.3, 0.7, 2000)
    y = (rng.uniform(size=2000) < 0.5 + 2 * (raw - 0.5)).astype(int)  # raw underconfident by 2x
    cal = PlattCalibrator.fit(raw, y)
    assert cal.a > 1.5  # stretches the raw score
    assert PlattCalibrator.fit(raw[:50], np.ones(50)).to_dict() == {"a": 1.0, "b": 0.0}


def test_ensemble_weights_favour_the_informative_member() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3000)
    good = np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.1, 3000), 0.01, 0.99)
    noise = rng.uniform(0.2, 0.8, 3000)
    w = learn_weights(np.column_stack([good, noise]), y)
    assert w.sum() == pytest.approx(1.0) and w[0] > 0.8


def test_sequence_context_and_row_order(lstm_model: Any, feature_arrays: dict[str, Any]) -> None:
    import datetime as dt

    import polars as pl

    from stockflow.ml.training import predict_rows

    a = feature_arrays
    g = a["g_test"]
    day = np.zeros(len(g), dtype=int)
    for i in range(1, len(g)):
        day[i] = day[i - 1] + 1 if g[i] == g[i - 1] else 0
    frame = pl.DataFrame(
        {"symbol": g, "session": [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in day]}
    )
    frame = frame.with_columns(
        *[pl.Series(n, a["X_test"][:, j]) for j, n in enumerate(a["names"])], pl.lit(False).alias("warmup")
    )
    target = frame.filter(pl.col("session") >= dt.date(2020, 1, 31))
    shuffled = target.sample(fraction=1.0, shuffle=True, seed=3)
    p = predict_rows(lstm_model, frame, target, a["names"])
    p_shuffled = predict_rows(lstm_model, frame, shuffled, a["names"])
    by_key = dict(zip(zip(target["symbol"], target["session"], strict=True), p, strict=True))
    assert [by_key[k] for k in zip(shuffled["symbol"], shuffled["session"], strict=True)] == list(p_shuffled)
    # Without the preceding rows the first windows of each symbol would be padding: different inputs.
    alone = lstm_model.predict_proba(target.select(a["names"]).to_numpy(), groups=target["symbol"].to_numpy())
    assert not np.allclose(alone, p)
