"""Each model explains its own predictions (issue 11): attributions from the model, with the method
stated, instead of feature z-scores that may name features the model never reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.explain import LOG_ODDS, PROBABILITY
from models.factory import make_model

NAMES = ["ret_1", "ret_20", "rsi_14", "flat"]


def _data(n: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, len(NAMES)))
    X[:, 3] = 1.0  # a constant feature: no model can use it
    y = (X[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(int)  # rsi_14 decides
    groups = np.repeat(np.array(["A", "B", "C"]), n // 3)
    return X, y, groups


def _fit(kind: str, **params: object) -> object:
    X, y, g = _data()
    model = make_model(kind, NAMES, feature_set_version="t", params=params or None)
    model.fit(
        X[:1000], y[:1000], X_val=X[1000:1200], y_val=y[1000:1200], groups=g[:1000], groups_val=g[1000:1200]
    )
    return model


def test_lightgbm_contributions_are_its_treeshap_values_and_sum_to_the_raw_score() -> None:
    X, _, _ = _data()
    model = _fit("lightgbm", num_boost_round=40)
    rows = [1300, 1400]
    (first, second) = model.explain(X, rows=rows, top=len(NAMES))
    assert first.method.startswith("LightGBM pred_contrib") and first.unit == LOG_ODDS
    assert first.attributions[0].feature == "rsi_14"  # the feature that decides the label
    assert "flat" not in {a.feature for a in first.attributions}
    raw = model.predict_raw(X)[rows]
    for expl, p in zip((first, second), raw, strict=True):
        total = expl.base + sum(a.contribution for a in expl.attributions)
        assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-6)


def test_momentum_names_only_its_own_column() -> None:
    X, _, _ = _data()
    model = _fit("momentum", column="ret_20")
    (expl,) = model.explain(X, rows=[1300], top=3)
    assert [a.feature for a in expl.attributions] in (["ret_20"], [])
    if expl.attributions:
        a = expl.attributions[0]
        assert a.contribution == pytest.approx(model.w * (X[1300, 1] - model.center) / model.scale)
    assert "ret_20" in expl.method and expl.unit == LOG_ODDS


def test_lstm_states_its_method_and_ignores_a_constant_input() -> None:
    X, _, g = _data(600)
    model = make_model("lstm", NAMES, feature_set_version="t", params={"window": 3, "units": 4, "epochs": 1})
    y = (X[:, 2] > 0).astype(int)
    model.fit(X[:400], y[:400], groups=g[:400])
    explanations = model.explain(X, groups=g, rows=[450, 599], top=len(NAMES))
    for expl in explanations:
        assert expl.method == "LSTM gradient x input over the window" and expl.unit == PROBABILITY
        assert expl.attributions and all(math.isfinite(a.contribution) for a in expl.attributions)
        assert "flat" not in {a.feature for a in expl.attributions}  # scaled to 0: gradient x 0


def test_ensemble_weights_its_members_attributions() -> None:
    X, _, g = _data()
    model = _fit("ensemble", members={"lightgbm": {"num_boost_round": 30}, "momentum": {"column": "ret_20"}})
    (expl,) = model.explain(X, groups=g, rows=[1300], top=2)
    assert expl.unit == PROBABILITY and "lightgbm+momentum" in expl.method
    assert expl.attributions[0].feature == "rsi_14"


def test_signal_drivers_are_the_models_own_attributions() -> None:
    """The momentum champion's drivers once named features it does not use (z-scores); now they are its
    own term, and the approval form's reason states the method."""
    import datetime as dt

    import polars as pl

    from stockflow.pipeline.signals import feature_drivers

    X, _, g = _data(300)
    model = _fit("momentum", column="ret_20")
    frame = pl.DataFrame(
        {"symbol": g[:300], "session": [dt.date(2012, 1, 2) + dt.timedelta(days=i % 100) for i in range(300)]}
        | {n: X[:300, j] for j, n in enumerate(NAMES)}
    )
    drivers = feature_drivers(frame, NAMES, model=model)
    assert set(drivers) == {"A", "B", "C"}
    for ds in drivers.values():
        assert [d.feature for d in ds] == ["ret_20"]
        assert ds[0].unit == LOG_ODDS and "ret_20" in ds[0].method and "log-odds" in ds[0].describe()
        assert ds[0].as_dict()["contribution"] == ds[0].contribution
    zs = feature_drivers(frame, NAMES, top=2)  # without a model: z-scores, as before
    assert all(d.contribution is None and "σ" in d.describe() for ds in zs.values() for d in ds)
