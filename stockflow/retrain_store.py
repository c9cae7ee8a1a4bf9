"""What a retrain stores beside its models: gate reasons, the registry's metric summary, run queries.

Split from :mod:`stockflow.retrain` to keep each module small.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from stockflow import registry
from stockflow.db.engine import transaction
from stockflow.db.models_ml import ModelRecord, RetrainRun
from stockflow.promotion import Decision


def gate_reason(decision: Decision, gate: Any) -> str:
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


def models_of_run(engine: Engine, run_id: int) -> list[registry.ModelEntry]:
    """Registry entries created by one retrain."""
    with transaction(engine) as s:
        rows = s.scalars(
            select(ModelRecord).where(ModelRecord.retrain_run_id == run_id).order_by(ModelRecord.id)
        )
        return [registry.ModelEntry.from_row(r) for r in rows]
