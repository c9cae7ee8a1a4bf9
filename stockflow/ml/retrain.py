"""Retrain: challengers trained and scored walk-forward beside the champion and the baselines, then a
promotion decision that is stored with its reason.

:func:`run_retrain` is a plain function (the Prefect flow in ``flows/retrain.py`` wraps its stages):

1. bars from the state store -> features (``stockflow.features``);
2. walk-forward folds with a purge gap (``stockflow.evaluation.folds``); per fold every challenger
   recipe, the champion's recipe (refit on the same folds, so the comparison is like for like), the
   baselines and a shuffled-label control are scored out of sample (:mod:`stockflow.ml.training`);
3. pooled metrics and the comparison table (``stockflow.evaluation``); :func:`stockflow.ml.promotion.decide`;
4. final models of each kind trained on the latest window, saved under ``data_dir/models/<version>/``
   with their card and a drift reference, registered as challengers; the candidate promoted when the
   rule says so. Registration and promotion happen in one transaction. Final models are fitted exactly
   as in the folds: the window's last ``val_days`` sessions (after a purge) are held out for early
   stopping, calibration and ensemble weights, and become the drift reference (rows the fit never saw).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine

from models.factory import effective_params, params_from_settings
from stockflow.choices import MODEL_KINDS
from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_ml import RetrainRun
from stockflow.errors import ConfigError, DataError
from stockflow.evaluation import comparison_table, model_metrics
from stockflow.evaluation.figures import panel_figures
from stockflow.evaluation.topk_eval import TopkConfig
from stockflow.features import feature_set
from stockflow.features.parquet import discard_chunks
from stockflow.jsonable import jsonable
from stockflow.logs import get_logger
from stockflow.ml import registry
from stockflow.ml.promotion import PromotionDecision, decide
from stockflow.ml.retrain_data import (
    FinalRunner,
    FoldJob,
    FoldRunner,
    PreparedData,
    cut_folds,
    final_here,
    prepare_data,
    serial_runner,
)
from stockflow.ml.retrain_records import gate_reason, record_retrain
from stockflow.ml.training import (
    Recipe,
    TrainConfig,
)

if TYPE_CHECKING:
    from stockflow.config import Settings

__all__ = [
    "FinalRunner", "FoldJob", "FoldRunner", "PreparedData", "cut_folds", "final_here", "prepare_data",
    "serial_runner",
]  # fmt: skip
REFERENCE_FILE = "reference.parquet"
BASELINES = ("always_up", "yesterday", "momentum", "reversal")


@dataclass(frozen=True)
class RetrainReport:
    """What a retrain did: data, folds, metrics beside baselines, registered versions, decision."""

    retrain_run_id: int
    symbols: list[str]
    skipped: dict[str, str]
    folds: list[dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    table: list[dict[str, Any]]
    challengers: dict[str, str]  # table name (kind; momentum -> momentum_model) -> registered version
    candidate: str | None  # version of the best challenger
    champion_before: str | None
    champion_after: str | None
    promoted: bool
    reason: str
    metric: str
    train_start: dt.date | None
    train_end: dt.date | None
    seconds: float
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # version -> model card


def resolve_kinds(settings: Settings, kinds: Sequence[str] | None) -> list[str]:
    """Requested kinds (default: settings.models.kinds), validated and de-duplicated."""
    chosen = list(dict.fromkeys(kinds or settings.models.kinds))
    bad = [k for k in chosen if k not in MODEL_KINDS]
    if bad or not chosen:
        raise ConfigError(f"unknown model kind(s) {bad or chosen}; choose from {', '.join(MODEL_KINDS)}")
    return chosen


def train_config(settings: Settings) -> TrainConfig:
    """Training configuration from settings."""
    ms = settings.models
    fs = feature_set(settings.features.feature_set_version)
    return TrainConfig(
        feature_columns=fs.columns,
        feature_set_version=fs.version,
        label_horizon=settings.features.label_horizon,
        val_days=ms.val_days,
        purge_days=max(ms.purge_days, settings.features.label_horizon),
        seed=ms.seed,
        momentum_column=ms.momentum_column,
        max_train_rows=ms.max_train_rows,
    )


def topk_config(settings: Settings) -> TopkConfig:
    """The live trade's top-k parameters (``settings.portfolio``) and the evaluation's trading cost."""
    pf = settings.portfolio
    return TopkConfig(pf.top_k, pf.hold_buffer, pf.max_changes, settings.models.cost_bps)


def entry_name(kind: str) -> str:
    """Name of a challenger kind in the comparison table (the momentum *model* must not collide with the
    momentum *baseline*)."""
    return f"{kind}_model" if kind in BASELINES else kind


def champion_name(version: str) -> str:
    """Name of the champion's recipe in the comparison table."""
    return f"champion[{version}]"


def evaluate_walk_forward(
    data: PreparedData,
    recipes: dict[str, Recipe],
    cfg: TrainConfig,
    champion: registry.ModelEntry | None,
    runner: FoldRunner = serial_runner,
) -> tuple[pl.DataFrame, dict[str, dict[str, Any]], str | None]:
    """Out-of-sample predictions and pooled metrics of recipes, champion, baselines and control."""
    all_recipes = dict(recipes)
    aliases: dict[str, str] = {}
    champ = None
    if champion is not None and champion.feature_set_version == cfg.feature_set_version:
        champ = champion_name(champion.version)
        crecipe = Recipe(champion.kind, effective_params(champion.kind, champion.params))
        same = next((n for n, r in recipes.items() if r.same_as(crecipe)), None)
        if same is not None:
            aliases[champ] = same  # identical recipe: the same fit, computed once
        else:
            all_recipes[champ] = crecipe
    elif champion is not None:
        get_logger().warning(
            "retrain: champion %s uses feature set %s, not %s: it cannot be scored on these folds",
            champion.version, champion.feature_set_version, cfg.feature_set_version,
        )  # fmt: skip

    one = FoldJob(data.frame, all_recipes, cfg, aliases, data.store)
    parts = [p for p in runner(one, data.folds) if not p.is_empty()]
    if not parts:
        raise DataError("no fold had training and test rows", rule="walk_forward")
    preds = pl.concat(parts)
    return preds, model_metrics(preds, label_horizon=cfg.label_horizon), champ


def start_run(engine: Engine, params: dict[str, Any], flow_run_id: str | None = None) -> int:
    """Record the start of a retrain; returns its id."""
    with transaction(engine) as s:
        run = RetrainRun(
            flow_run_id=flow_run_id, params=jsonable(params), status="running", started_at=utcnow()
        )
        s.add(run)
        s.flush()
        return int(run.id)


def fail_run(engine: Engine, run_id: int, err: BaseException) -> None:
    """Mark a retrain failed with the error (nothing was registered: that happens in one transaction)."""
    with transaction(engine) as s:
        run = s.get(RetrainRun, run_id)
        if run is not None:
            run.status = "failed"
            run.finished_at = utcnow()
            run.reason = f"{type(err).__name__}: {err}"


def run_retrain(
    settings: Settings,
    engine: Engine,
    *,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    kinds: Sequence[str] | None = None,
    flow_run_id: str | None = None,
    runner: FoldRunner = serial_runner,
) -> RetrainReport:
    """Train challengers, compare them walk-forward with the champion and the baselines, register them
    and promote the best one only when :func:`stockflow.ml.promotion.decide` says so. See the module doc."""
    t0 = time.perf_counter()
    chosen = resolve_kinds(settings, kinds)
    params = {"symbols": list(symbols or []), "start": start, "end": end, "kinds": chosen}
    run_id = start_run(engine, params, flow_run_id)
    try:
        data = prepare_data(settings, engine, symbols=symbols, start=start, end=end)
        try:
            evaluation = evaluate(settings, engine, data, chosen, runner)
            return finalize(settings, engine, data, evaluation, run_id, started=t0)
        finally:
            discard_chunks(data.store)
    except BaseException as err:
        fail_run(engine, run_id, err)
        raise


@dataclass(frozen=True)
class Evaluation:
    """Walk-forward outcome: recipes compared, pooled metrics, the table and the decision."""

    recipes: dict[str, Recipe]
    metrics: dict[str, dict[str, Any]]
    table: list[dict[str, Any]]
    decision: PromotionDecision
    control: str | None
    champion: registry.ModelEntry | None


def evaluate(
    settings: Settings,
    engine: Engine,
    data: PreparedData,
    kinds: Sequence[str],
    runner: FoldRunner = serial_runner,
) -> Evaluation:
    """Score challengers, champion recipe, baselines and control on the folds; decide."""
    ms = settings.models
    cfg = train_config(settings)
    recipes = {
        entry_name(k): Recipe(k, effective_params(k, params_from_settings(k, ms, cfg.feature_columns)))
        for k in kinds
    }
    champ_entry = registry.champion(engine)
    get_logger().info(
        "retrain: %d symbols, %d folds, kinds %s, champion %s",
        len(data.symbols), len(data.folds), list(kinds), champ_entry.version if champ_entry else None,
    )  # fmt: skip
    preds, metrics, champ_name = evaluate_walk_forward(data, recipes, cfg, champ_entry, runner)
    for name, figs in panel_figures(preds, topk_config(settings), label_horizon=cfg.label_horizon).items():
        metrics.setdefault(name, {"kind": "benchmark"}).update(figs)
    control = next((n for n, m in metrics.items() if m.get("kind") == "control"), None)
    decision = decide(
        metrics,
        challengers=list(recipes),
        baselines=[b for b in BASELINES if b in metrics],
        control=control,
        champion=champ_name,
        metric=ms.promotion_metric,
        margin=ms.promotion_margin,
        t_min=ms.promotion_t_min,
    )
    get_logger().info("retrain: %s", decision.reason)
    table = comparison_table(metrics).to_dicts()
    return Evaluation(recipes, metrics, table, decision, control, champ_entry)


def finalize(
    settings: Settings,
    engine: Engine,
    data: PreparedData,
    ev: Evaluation,
    run_id: int,
    *,
    started: float | None = None,
    final_runner: FinalRunner = final_here,
) -> RetrainReport:
    """Train the final models on the latest window (``final_runner``: here, or one unit per kind on a
    cluster), save them with card and drift reference, register them and promote the candidate when
    decided (one transaction)."""
    t0 = time.perf_counter() if started is None else started
    ms = settings.models
    cfg = train_config(settings)
    decision, metrics, control = ev.decision, ev.metrics, ev.control
    fitted = final_runner(data.source, dict(ev.recipes), cfg, ms.train_window_days)
    train_start, train_end = fitted.train_start, fitted.train_end
    fold_info = [f.describe() for f in data.folds]
    versions = {name: registry.new_version(r.kind) for name, r in ev.recipes.items()}
    cards: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    for name, model in fitted.models.items():
        version = versions[name]
        gate = decision.gates.get(name)
        model.meta.update(
            version=version,
            train_start=str(train_start),
            train_end=str(train_end),
            symbols=data.symbols,
            label_horizon=cfg.label_horizon,
            walk_forward={"folds": fold_info, "metrics": metrics.get(name, {})},
            baselines={b: metrics[b] for b in BASELINES if b in metrics},
            control=metrics.get(control) if control else None,
            gate={
                "passed": bool(gate and gate.passed and decision.control_ok),
                "reason": gate_reason(decision, gate),
                "control_ic_t": metrics.get(control, {}).get("ic_t") if control else None,
                "figures": gate.figures if gate else {},
            },
        )
        out = paths[name] = registry.artifact_dir(settings, version).resolve()
        model.save(out)
        fitted.references[name].write_parquet(out / REFERENCE_FILE)
        cards[version] = model.card()

    champ_entry = ev.champion
    candidate_version = versions.get(decision.candidate) if decision.candidate else None
    champion_after = record_retrain(
        engine,
        run_id=run_id,
        symbols=data.symbols,
        models=fitted.models,
        versions=versions,
        paths=paths,
        metrics=metrics,
        decision=decision,
        feature_set_version=cfg.feature_set_version,
        champ_entry=champ_entry,
        candidate_version=candidate_version,
        train_start=train_start,
        train_end=train_end,
    )
    seconds = time.perf_counter() - t0
    get_logger().info("retrain: finished in %.1fs; champion %s", seconds, champion_after)
    return RetrainReport(
        retrain_run_id=run_id,
        symbols=data.symbols,
        skipped=data.skipped,
        folds=fold_info,
        metrics=metrics,
        table=ev.table,
        challengers=versions,
        candidate=candidate_version,
        champion_before=champ_entry.version if champ_entry else None,
        champion_after=champion_after,
        promoted=bool(decision.promote and candidate_version),
        reason=decision.reason,
        metric=decision.metric,
        train_start=train_start,
        train_end=train_end,
        seconds=seconds,
        cards=cards,
    )
