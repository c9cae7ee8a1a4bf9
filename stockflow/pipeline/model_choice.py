"""Which model's predictions the run trades on (the champion, or why there is none), and its
predictions for the session."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine

from models.base import read_card
from stockflow.logs import get_logger
from stockflow.ml import registry
from stockflow.ml.predict import run_predict
from stockflow.ml.retrain_records import latest_retrain

if TYPE_CHECKING:
    from stockflow.config import Settings
    from stockflow.ml.registry import ModelEntry
    from stockflow.pipeline.market import MarketView


@dataclass(frozen=True)
class ModelChoice:
    """Which model's predictions become signals, or why there is none."""

    entry: ModelEntry | None
    source: str  # champion / best_challenger / none
    trained_now: bool
    message: str


def no_model_message(engine: Engine) -> str:
    """Why there is no champion and what a person can do about it."""
    models = registry.list_models(engine, limit=5)
    run = latest_retrain(engine)
    if not models:
        why = "no model was ever trained"
    elif run is not None and run.reason:
        # The retrain's own decision names the gate that refused (control leak, IC, portfolio, margin).
        why = f"the last retrain promoted nothing: {run.reason.removeprefix('nothing promoted: ')}"
    else:
        best = registry.best_challenger(engine)
        gate = (best.metrics.get("gate") or {}) if best else {}
        reason = gate.get("reason") if isinstance(gate, dict) else None
        why = "no retrain decision is recorded" + (
            f" (best challenger {best.version}: {reason})" if best else ""
        )
    return (
        f"no champion model: {why}. Nothing was traded and no signal was made up. "
        "To trade anyway for a demo, promote one by hand: `stockflow models promote VERSION --force "
        "--reason demo` (see `stockflow models list`), or set trading.signal_source=best_challenger "
        "(demos and tests only)."
    )


def choose_model(settings: Settings, engine: Engine, *, trained_now: bool = False) -> ModelChoice:
    """The champion; with ``trading.signal_source = best_challenger`` (demo/test opt-in) the best model
    of the latest retrain, even when a champion exists (``make run`` may promote one; a demo setting that
    is silently ignored then would never show the approval path), and every message says so."""
    champ = registry.champion(engine)
    if settings.trading.signal_source == "best_challenger":
        best = registry.best_challenger(engine)
        if best is not None and (champ is None or best.version != champ.version):
            why = "NO CHAMPION" if champ is None else f"DEMO: champion {champ.version} set aside"
            return ModelChoice(
                best,
                "best_challenger",
                trained_now,
                f"{why}: using the best challenger {best.version} ({best.kind}) because "
                "trading.signal_source=best_challenger (demo/test opt-in); it did NOT beat the baselines",
            )
    if champ is not None:
        return ModelChoice(champ, "champion", trained_now, f"champion {champ.version} ({champ.kind})")
    return ModelChoice(None, "none", trained_now, no_model_message(engine))


def choose_or_train(
    settings: Settings,
    engine: Engine,
    symbols: list[str],
    end: dt.date,
    *,
    choose: Callable[..., ModelChoice],
    train: Callable[[list[str], dt.date], str | None],
) -> ModelChoice:
    """The model to trade on; when none was ever trained (and ``trading.train_if_no_model``), train
    first with ``train`` (returns why it failed, or None) and choose again."""
    choice = choose(settings, engine)
    if choice.entry is None and settings.trading.train_if_no_model and never_trained(engine):
        get_logger().info("no model was ever trained: training first")
        failure = train(symbols, end)
        choice = choose(settings, engine, trained_now=True)
        if failure and choice.entry is None:
            choice = dataclasses.replace(choice, message=f"{failure}. {choice.message}")
    return choice


def never_trained(engine: Engine) -> bool:
    """True when the registry holds no model at all."""
    return not registry.list_models(engine, limit=1)


def model_importances(entry: ModelEntry | None) -> dict[str, float]:
    """Feature importances from the model's card, when it has them."""
    if entry is None:
        return {}
    try:
        card = read_card(Path(entry.artifact_path))
    except Exception:
        return {}
    imp = card.get("feature_importance") or {}
    return (
        {str(k): float(v) for k, v in imp.items() if isinstance(v, int | float)}
        if isinstance(imp, dict)
        else {}
    )


def predict_for(
    settings: Settings, engine: Engine, choice: ModelChoice, market: MarketView
) -> tuple[list[Any], dict[str, str], Any, pl.DataFrame]:
    """Predictions of the chosen model for the market's session over its symbols, from the bars the run
    already read (stored idempotently by the models area's ``run_predict``), the symbols it could not
    score, with why, the loaded model and the feature rows it scored (to explain its predictions on
    exactly those rows, without building the features again; None and empty without a model)."""
    if choice.entry is None:
        return [], {}, None, pl.DataFrame()
    version = None if choice.source == "champion" else choice.entry.version
    rep = run_predict(
        settings,
        engine,
        list(market.symbols),
        market.session,
        version=version,
        bars=market.bars,
        bars_start=market.start,
    )
    return list(rep.predictions), dict(rep.skipped), rep.model, rep.scored
