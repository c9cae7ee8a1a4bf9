"""Model registry in the database: versions, statuses (challenger / champion / retired), promotion.

Artifacts live under ``data_dir/models/<version>/`` (native files plus ``card.json``); the registry row
holds everything needed to find, judge and reproduce them. At most one model is champion at a time,
enforced by a partial unique index, and every promotion records when and why.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from stockflow.db.base import utcnow
from stockflow.db.engine import transaction
from stockflow.db.models_ml import ModelRecord, RetrainRun
from stockflow.errors import ModelError

if TYPE_CHECKING:
    from models.base import BaseModel
    from stockflow.config import Settings


class NoChampionError(ModelError):
    """No model has been promoted yet: train one (``stockflow retrain``) or promote one by hand."""


@dataclass(frozen=True)
class ModelEntry:
    """One registry row as an immutable value."""

    version: str
    kind: str
    params: dict[str, Any]
    feature_set_version: str
    symbols: list[str]
    train_start: dt.date | None
    train_end: dt.date | None
    metrics: dict[str, Any]
    artifact_path: str
    status: str
    created_at: dt.datetime
    promoted_at: dt.datetime | None = None
    reason: str | None = None
    retrain_run_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, r: ModelRecord) -> ModelEntry:
        """Copy an ORM row into a value."""
        return cls(
            version=r.version,
            kind=r.kind,
            params=dict(r.params or {}),
            feature_set_version=r.feature_set_version,
            symbols=list(r.symbols or []),
            train_start=r.train_start,
            train_end=r.train_end,
            metrics=dict(r.metrics or {}),
            artifact_path=r.artifact_path,
            status=r.status,
            created_at=r.created_at,
            promoted_at=r.promoted_at,
            reason=r.reason,
            retrain_run_id=r.retrain_run_id,
        )

    @property
    def gate_passed(self) -> bool | None:
        """Whether walk-forward evaluation found it better than the baselines (None: not evaluated)."""
        gate = self.metrics.get("gate")
        return None if not isinstance(gate, dict) else bool(gate.get("passed"))


def new_version(kind: str) -> str:
    """A unique, sortable version string: UTC time, kind, random suffix."""
    return f"{utcnow():%Y%m%dT%H%M%S}-{kind}-{uuid.uuid4().hex[:6]}"


def artifact_dir(settings: Settings, version: str) -> Path:
    """Where the artifacts of ``version`` are saved."""
    return Path(settings.data_dir) / "models" / version


def register(
    session: Session,
    *,
    version: str,
    kind: str,
    params: dict[str, Any],
    feature_set_version: str,
    artifact_path: str | Path,
    symbols: list[str] | None = None,
    train_start: dt.date | None = None,
    train_end: dt.date | None = None,
    metrics: dict[str, Any] | None = None,
    status: str = "challenger",
    reason: str | None = None,
    retrain_run_id: int | None = None,
) -> ModelEntry:
    """Add a model (inside the caller's transaction). Register champions through :func:`promote`."""
    if status not in ("challenger", "retired"):
        raise ModelError(f"register as challenger or retired, then promote (got status {status!r})")
    row = ModelRecord(
        version=version,
        kind=kind,
        params=params,
        feature_set_version=feature_set_version,
        symbols=list(symbols or []),
        train_start=train_start,
        train_end=train_end,
        metrics=metrics or {},
        artifact_path=str(artifact_path),
        status=status,
        reason=reason,
        retrain_run_id=retrain_run_id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return ModelEntry.from_row(row)


def get_model(engine: Engine, version: str) -> ModelEntry:
    """The entry of ``version``; :class:`ModelError` naming it when unknown."""
    with transaction(engine) as s:
        row = s.scalars(select(ModelRecord).where(ModelRecord.version == version)).one_or_none()
        if row is None:
            raise ModelError(
                f"model version {version!r} is not in the registry (see `stockflow models list`)"
            )
        return ModelEntry.from_row(row)


def champion(engine: Engine) -> ModelEntry | None:
    """The current champion, or None."""
    with transaction(engine) as s:
        row = s.scalars(select(ModelRecord).where(ModelRecord.status == "champion")).one_or_none()
        return None if row is None else ModelEntry.from_row(row)


def list_models(engine: Engine, *, status: str | None = None, limit: int = 50) -> list[ModelEntry]:
    """Newest first."""
    q = select(ModelRecord).order_by(ModelRecord.created_at.desc(), ModelRecord.id.desc()).limit(limit)
    if status:
        q = q.where(ModelRecord.status == status)
    with transaction(engine) as s:
        return [ModelEntry.from_row(r) for r in s.scalars(q)]


def promote_in(session: Session, version: str, *, reason: str) -> ModelEntry:
    """Make ``version`` champion and retire the previous one, inside the caller's transaction."""
    row = session.scalars(select(ModelRecord).where(ModelRecord.version == version)).one_or_none()
    if row is None:
        raise ModelError(f"model version {version!r} is not in the registry (see `stockflow models list`)")
    if row.status == "champion":
        return ModelEntry.from_row(row)
    now = utcnow()
    session.execute(update(ModelRecord).where(ModelRecord.status == "champion").values(status="retired"))
    session.flush()
    row.status = "champion"
    row.promoted_at = now
    row.reason = reason
    session.flush()
    return ModelEntry.from_row(row)


def promote(engine: Engine, version: str, *, reason: str, force: bool = False) -> ModelEntry:
    """Promote ``version`` by hand. Without ``force`` only a model whose walk-forward evaluation passed
    the gate (better than the baselines) can be promoted; ``force`` overrides that and says so in the
    stored reason."""
    if not reason.strip():
        raise ModelError("a promotion needs a reason (--reason)")
    entry = get_model(engine, version)
    if not force and entry.gate_passed is not True:
        why = entry.metrics.get("gate", {}).get("reason", "it was not evaluated against the baselines")
        raise ModelError(
            f"model {version} did not pass the promotion gate ({why}); use --force to promote anyway"
        )
    forced = " (forced past the gate)" if force and entry.gate_passed is not True else ""
    text = f"manual promotion{forced}: {reason}"
    with transaction(engine) as s:
        return promote_in(s, version, reason=text)


def load_champion(settings: Settings, engine: Engine) -> tuple[ModelEntry, BaseModel]:
    """The champion's entry and its loaded model, checked against the configured feature set.

    Raises :class:`NoChampionError` when there is none and :class:`ModelError` when its files are
    missing or corrupt or it was trained on another feature-set version.
    """
    from models.factory import load_model

    entry = champion(engine)
    if entry is None:
        raise NoChampionError(
            "no champion model: run `stockflow retrain` (or the retrain flow), or promote one with "
            "`stockflow models promote VERSION --force --reason ...`"
        )
    want = settings.features.feature_set_version
    if entry.feature_set_version != want:
        raise ModelError(
            f"champion {entry.version} was trained on feature set {entry.feature_set_version!r} but "
            f"features are {want!r}; retrain"
        )
    return entry, load_model(model_dir(settings, entry), feature_set_version=want)


def load_version(settings: Settings, engine: Engine, version: str) -> tuple[ModelEntry, BaseModel]:
    """Any registered model (not only the champion), checked against the configured feature set."""
    from models.factory import load_model

    entry = get_model(engine, version)
    return entry, load_model(
        model_dir(settings, entry), feature_set_version=settings.features.feature_set_version
    )


def model_dir(settings: Settings, entry: ModelEntry) -> Path:
    """The artifact directory of ``entry``: the recorded path, or the version's directory under the
    configured data_dir when the project moved since training."""
    path = Path(entry.artifact_path)
    if not path.exists() and artifact_dir(settings, entry.version).exists():
        return artifact_dir(settings, entry.version)
    return path


def best_challenger(engine: Engine) -> ModelEntry | None:
    """The best model of the latest finished retrain (promoted or not), for demos; None if none."""
    with transaction(engine) as s:
        run = s.scalars(
            select(RetrainRun)
            .where(RetrainRun.status == "succeeded", RetrainRun.best_challenger.is_not(None))
            .order_by(RetrainRun.id.desc())
            .limit(1)
        ).one_or_none()
        if run is None or run.best_challenger is None:
            return None
        row = s.scalars(select(ModelRecord).where(ModelRecord.version == run.best_challenger)).one_or_none()
        return None if row is None else ModelEntry.from_row(row)
