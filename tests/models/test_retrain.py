"""Retrain end to end on small synthetic panels, and the registry on both database backends."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from models.cards import gate_summary
from stockflow.config import Settings
from stockflow.db import transaction
from stockflow.db.models_ml import ModelRecord, RetrainRun
from stockflow.errors import DataError, ModelError
from stockflow.ml import registry
from stockflow.ml.predict import run_predict
from stockflow.ml.retrain import (
    evaluate_walk_forward,
    prepare_data,
    run_retrain,
    train_config,
)
from stockflow.ml.retrain_records import latest_retrain
from stockflow.ml.training import Recipe, fold_predictions
from tests.models.conftest import SYMBOLS, small_settings, store


def test_retrain_promotes_a_better_model_then_keeps_it_within_the_margin(
    ml_settings: Settings, sqlite_engine: Engine, reversal_bars: pl.DataFrame
) -> None:
    store(sqlite_engine, reversal_bars)
    first = run_retrain(ml_settings, sqlite_engine)
    assert first.promoted, first.reason
    assert first.candidate == first.challengers["lightgbm"] and first.champion_after == first.candidate
    names = {r["model"] for r in first.table}
    assert {"lightgbm", "momentum_model", "always_up", "yesterday", "momentum"} <= names
    assert any(n.startswith("shuffled_control") for n in names)
    champ = registry.champion(sqlite_engine)
    assert champ is not None and champ.version == first.candidate and champ.gate_passed
    assert champ.reason == first.reason and champ.promoted_at is not None
    # Each gate's figures are stored with the model and shown by `stockflow models list`.
    gate = champ.metrics["gate"]
    assert gate["figures"]["ic_vs_momentum"]["diff_t"] >= 2 and gate["figures"]["portfolio"]["ir"] > 0
    shown = gate_summary(gate)
    assert "control rank-IC t" in shown and "vs reversal" in shown and "top-k net excess" in shown
    art = Path(champ.artifact_path)
    assert (
        (art / "card.json").is_file()
        and (art / "model.txt").is_file()
        and (art / "reference.parquet").is_file()
    )

    # Same data, same recipe: the champion refit on the same folds scores identically -> kept (margin).
    second = run_retrain(ml_settings, sqlite_engine)
    assert not second.promoted and second.champion_after == first.candidate
    assert "champion kept" in second.reason and "< margin 0.005" in second.reason
    assert f"champion[{first.candidate}]" in {r["model"] for r in second.table}
    run = latest_retrain(sqlite_engine)
    assert run is not None and run.status == "succeeded" and not run.promoted and run.reason == second.reason
    statuses = {e.version: e.status for e in registry.list_models(sqlite_engine)}
    assert statuses[first.candidate] == "champion" and list(statuses.values()).count("champion") == 1


def test_a_model_without_skill_is_not_promoted_and_the_reason_names_the_gate(
    ml_settings: Settings, sqlite_engine: Engine, random_walk_bars: pl.DataFrame
) -> None:
    # Pure random walks: the control is at chance, and so is the model: the IC gate refuses it.
    store(sqlite_engine, random_walk_bars)
    rep = run_retrain(ml_settings, sqlite_engine, kinds=["lightgbm"])
    assert not rep.promoted and registry.champion(sqlite_engine) is None
    assert rep.reason.startswith("nothing promoted: best challenger lightgbm failed: ")
    assert "with session-level significance" in rep.reason and "beats every baseline" not in rep.reason
    best = registry.best_challenger(sqlite_engine)
    assert best is not None and best.version == rep.challengers["lightgbm"] and best.gate_passed is False
    with pytest.raises(ModelError, match="did not pass the promotion gate"):
        registry.promote(sqlite_engine, best.version, reason="demo")
    forced = registry.promote(sqlite_engine, best.version, reason="demo", force=True)
    assert forced.status == "champion" and forced.reason == "manual promotion (forced past the gate): demo"


def test_folds_are_independent_and_seeded(
    ml_settings: Settings, sqlite_engine: Engine, reversal_bars: pl.DataFrame
) -> None:
    store(sqlite_engine, reversal_bars)
    data = prepare_data(ml_settings, sqlite_engine)
    cfg = train_config(ml_settings)
    recipes = {"lightgbm": Recipe("lightgbm", {"num_boost_round": 50})}
    preds, _, _ = evaluate_walk_forward(
        data, recipes, cfg, None, runner=lambda fn, fs: [fn(f) for f in reversed(fs)]
    )
    alone = fold_predictions(data.frame, data.folds[-1], recipes, cfg)
    together = preds.filter(pl.col("fold") == data.folds[-1].index)
    assert alone.height == together.height > 0
    key = ["model", "symbol", "session"]
    assert alone.sort(key).equals(together.sort(key))
    # The per-(kind, fold) unit: one recipe, no control, no baselines: the same rows for that model.
    unit = fold_predictions(data.frame, data.folds[-1], recipes, cfg, control=False, baselines=False)
    assert set(unit["model"]) == {"lightgbm"}
    assert unit.sort(key).equals(together.filter(pl.col("model") == "lightgbm").sort(key))


def test_failed_retrain_is_recorded(ml_settings: Settings, sqlite_engine: Engine) -> None:
    with pytest.raises(DataError, match="no bars stored"):
        run_retrain(ml_settings, sqlite_engine)
    run = latest_retrain(sqlite_engine)
    assert run is not None and run.status == "failed" and "no bars stored" in (run.reason or "")


def _register(engine: Engine, version: str, passed: bool | None = True) -> None:
    with transaction(engine) as s:
        registry.register(
            s, version=version, kind="lightgbm", params={"seed": 1}, feature_set_version="ta-v1",
            artifact_path=f"/tmp/{version}", symbols=["AAA"],
            metrics={"gate": {"passed": passed, "reason": "test"}} if passed is not None else {},
        )  # fmt: skip


def test_registry_promotion_and_single_champion(engine: Engine) -> None:
    _register(engine, "v1")
    _register(engine, "v2")
    assert registry.champion(engine) is None
    registry.promote(engine, "v1", reason="first")
    registry.promote(engine, "v2", reason="better")
    by_version = {e.version: e for e in registry.list_models(engine)}
    assert by_version["v1"].status == "retired" and by_version["v2"].status == "champion"
    assert by_version["v2"].reason == "manual promotion: better"
    # The database itself refuses a second champion.
    with pytest.raises(IntegrityError), transaction(engine) as s:
        s.execute(ModelRecord.__table__.update().where(ModelRecord.version == "v1").values(status="champion"))
    with pytest.raises(ModelError, match="not in the registry"):
        registry.promote(engine, "nope", reason="x")
    with pytest.raises(ModelError, match="needs a reason"):
        registry.promote(engine, "v1", reason=" ")
    with transaction(engine) as s:
        assert s.scalars(select(RetrainRun)).first() is None


def test_retrain_and_predict_on_the_alpha158_feature_set(
    tmp_path: Path, sqlite_engine: Engine, reversal_bars: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = small_settings(tmp_path, features={"feature_set_version": "a158-v1"})
    store(sqlite_engine, reversal_bars)
    rep = run_retrain(settings, sqlite_engine, kinds=["lightgbm", "momentum"])
    entries = {e.kind: e for e in registry.list_models(sqlite_engine)}
    assert entries["lightgbm"].feature_set_version == "a158-v1"
    assert entries["momentum"].params["column"] == "ROC20"  # the set's own lookback return
    version = rep.challengers["lightgbm"]
    preds = run_predict(settings, sqlite_engine, version=version).predictions
    assert len(preds) == len(SYMBOLS) and all(p.prob_outperform == p.probability for p in preds)
