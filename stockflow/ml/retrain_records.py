"""What a retrain stores beside its models: gate reasons, the registry's metric summary, run queries.

Split from :mod:`stockflow.ml.retrain` to keep each module small.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_ml import RetrainRun
from stockflow.jsonable import jsonable
from stockflow.ml import registry
from stockflow.ml.promotion import PromotionDecision


def gate_reason(decision: PromotionDecision, gate: Any) -> str:
    """A challenger's gate outcome in words; when the control leaked, that reason comes first, so a
    gate that passed on its own figures never reads as a promotion."""
    own = gate.reason if gate else ""
    if decision.control_ok:
        return own
    return f"not promotable: {decision.reason.removeprefix('nothing promoted: ')} (own gates: {own})"


def registry_metrics(card: dict[str, Any]) -> dict[str, Any]:
    wf = card.get("walk_forward", {})
    return {
        "walk_forward": summary(wf.get("metrics", {})),
        "baselines": {k: summary(v) for k, v in (card.get("baselines") or {}).items()},
        "control": summary(card.get("control") or {}),
        "gate": card.get("gate", {}),
        "folds": wf.get("folds", []),
    }


SUMMARY_KEYS = (
    "n", "base_rate", "accuracy", "roc_auc", "log_loss", "brier", "ic_mean", "ic_std", "ic_t", "ic_ir",
    "pearson_ic_mean", "pearson_ic_ir", "pearson_ic_t", "ic_t_every_h", "ic_n_sessions", "n_symbols",
    "hit_rate_by_confidence", "portfolio", "vs_momentum", "vs_reversal",
)  # fmt: skip


def summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in SUMMARY_KEYS if k in m}


def latest_retrain(engine: Engine) -> RetrainRun | None:
    """The most recent retrain run row (any status)."""
    with transaction(engine) as s:
        return s.scalars(select(RetrainRun).order_by(RetrainRun.id.desc()).limit(1)).one_or_none()


def record_retrain(
    engine: Engine,
    *,
    run_id: int,
    symbols: list[str],
    models: dict[str, Any],
    versions: dict[str, str],
    paths: dict[str, Path],
    metrics: dict[str, dict[str, Any]],
    decision: PromotionDecision,
    feature_set_version: str,
    champ_entry: registry.ModelEntry | None,
    candidate_version: str | None,
    train_start: dt.date,
    train_end: dt.date,
) -> str | None:
    """Register the challengers, promote when decided, and close the retrain run: one transaction."""
    with transaction(engine) as s:
        for name, model in models.items():
            card = model.card()
            gate = decision.gates.get(name)
            registry.register(
                s,
                version=versions[name],
                kind=model.kind,
                params=jsonable(model.params),
                feature_set_version=feature_set_version,
                artifact_path=str(paths[name]),
                symbols=symbols,
                train_start=train_start,
                train_end=train_end,
                metrics=jsonable(registry_metrics(card)),
                reason=gate_reason(decision, gate) if gate else None,
                retrain_run_id=run_id,
            )
        champion_after = champ_entry.version if champ_entry else None
        if decision.promote and candidate_version:
            registry.promote_in(s, candidate_version, reason=decision.reason)
            champion_after = candidate_version
        run = s.get(RetrainRun, run_id)
        assert run is not None
        run.status = "succeeded"
        run.finished_at = utcnow()
        run.champion_before = champ_entry.version if champ_entry else None
        run.best_challenger = candidate_version
        run.promoted = bool(decision.promote and candidate_version)
        run.reason = decision.reason
        run.metrics = jsonable({k: summary(v) for k, v in metrics.items()})
        return champion_after
