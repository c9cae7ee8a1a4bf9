"""Which model trades: the champion, or the best challenger when the demo opt-in asks for it.

Issue 11: `make run` promotes a champion, and the README's demo setting
(`trading.signal_source=best_challenger`) then had no effect, so the approval walkthrough could not be
reached in the README's order. The opt-in now wins over a champion, and its message says so.
"""

from __future__ import annotations

from sqlalchemy import Engine

from stockflow.config import load_settings
from stockflow.db.engine import transaction
from stockflow.db.models_ml import RetrainRun
from stockflow.ml import registry
from stockflow.pipeline.model_choice import choose_model


def _models(engine: Engine) -> None:
    with transaction(engine) as s:
        for version, kind in (("v-momentum", "momentum"), ("v-lgbm", "lightgbm")):
            registry.register(
                s, version=version, kind=kind, params={}, feature_set_version="f1", artifact_path="/nowhere"
            )
        s.add(RetrainRun(status="succeeded", best_challenger="v-lgbm", champion_before=None))
    registry.promote(engine, "v-momentum", reason="make run", force=True)


def test_champion_trades_by_default(sqlite_engine: Engine) -> None:
    _models(sqlite_engine)
    choice = choose_model(load_settings(), sqlite_engine)
    assert (choice.source, choice.entry and choice.entry.version) == ("champion", "v-momentum")


def test_demo_opt_in_uses_the_best_challenger_even_with_a_champion(sqlite_engine: Engine) -> None:
    _models(sqlite_engine)
    settings = load_settings(trading={"signal_source": "best_challenger"})
    choice = choose_model(settings, sqlite_engine)
    assert choice.source == "best_challenger" and choice.entry is not None
    assert choice.entry.version == "v-lgbm"
    assert "DEMO" in choice.message and "v-momentum" in choice.message and "did NOT beat" in choice.message


def test_demo_opt_in_without_any_model_says_why(sqlite_engine: Engine) -> None:
    settings = load_settings(trading={"signal_source": "best_challenger"})
    choice = choose_model(settings, sqlite_engine)
    assert choice.entry is None and choice.source == "none" and "no model was ever trained" in choice.message
