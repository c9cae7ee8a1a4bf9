"""Runs whose process died: recorded owners, and marking what they left ``running`` as crashed.

Every ingest and trade run records its owner (:func:`stockflow.orphans.owner_stamp`) in ``run_owners``
in the transaction that creates it. A run still ``running`` (or ``awaiting_approval``) whose owner
process is gone (kill -9, OOM, reboot) can never finish: :func:`mark_crashed_runs`, called when a
command starts, marks it ``crashed`` in the database and, when it can reach the Prefect API, the flow
run ``Crashed`` there too. Owners on another host are left alone (their liveness cannot be told).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from stockflow.db import transaction, utcnow
from stockflow.db.models_data import IngestRun, RunOwner
from stockflow.db.models_pipeline import TradeRun
from stockflow.logs import get_logger
from stockflow.orphans import owner_alive, owner_stamp

#: Statuses of a run that is not finished.
OPEN_STATUSES = {"ingest": ("running",), "trade": ("running", "awaiting_approval")}


@dataclass(frozen=True)
class CrashedRun:
    """A run marked crashed: which, whose process, and its Prefect flow run."""

    kind: str
    run_id: int
    flow_run_id: str | None
    owner: dict[str, Any]

    def line(self) -> str:
        """One line for the log / terminal."""
        return (
            f"{self.kind} run {self.run_id} was left running by process {self.owner.get('pid')} on "
            f"{self.owner.get('host')}, which is gone: marked crashed"
        )


def claim_run(session: Session, kind: str, run_id: int, flow_run_id: str | None) -> None:
    """Record this process as the owner of run ``run_id`` (inside the transaction creating the run). A
    stale owner row of a reused run id (rows deleted by hand, a restored backup) is replaced."""
    session.execute(delete(RunOwner).where(RunOwner.kind == kind, RunOwner.run_id == run_id))
    session.add(
        RunOwner(kind=kind, run_id=run_id, flow_run_id=flow_run_id, owner=owner_stamp(), created_at=utcnow())
    )


def run_owner(engine: Engine, kind: str, run_id: int) -> dict[str, Any] | None:
    """The recorded owner of a run, if any."""
    with engine.connect() as conn:
        return conn.execute(
            select(RunOwner.owner).where(RunOwner.kind == kind, RunOwner.run_id == run_id)
        ).scalar()


def trade_run_owner_alive(engine: Engine, flow_run_id: str) -> tuple[bool | None, dict[str, Any] | None]:
    """Whether the process running the trade run of Prefect flow run ``flow_run_id`` lives (None: unknown)."""
    with engine.connect() as conn:
        owner = conn.execute(
            select(RunOwner.owner).where(RunOwner.kind == "trade", RunOwner.flow_run_id == flow_run_id)
        ).scalar()
    return owner_alive(owner), owner


def _open_runs(engine: Engine) -> list[tuple[str, int, str | None, dict[str, Any]]]:
    out = []
    with engine.connect() as conn:
        for kind, model in (("ingest", IngestRun), ("trade", TradeRun)):
            q = (
                select(model.id, model.flow_run_id, RunOwner.owner)
                .join(RunOwner, (RunOwner.kind == kind) & (RunOwner.run_id == model.id))
                .where(model.status.in_(OPEN_STATUSES[kind]))
            )
            out += [(kind, int(i), f, o) for i, f, o in conn.execute(q)]
    return out


def mark_crashed_runs(engine: Engine, *, prefect: bool = True) -> list[CrashedRun]:
    """Mark crashed every open ingest/trade run whose owner process is dead (see module docstring)."""
    crashed = [
        CrashedRun(kind, run_id, fr, owner)
        for kind, run_id, fr, owner in _open_runs(engine)
        if owner_alive(owner) is False
    ]
    if not crashed:
        return []
    now = utcnow()
    with transaction(engine) as s:
        for c in crashed:
            why = f"crashed: {c.line()} ({now:%Y-%m-%d %H:%M} UTC)"
            if c.kind == "ingest":
                s.execute(
                    update(IngestRun)
                    .where(IngestRun.id == c.run_id, IngestRun.status == "running")
                    .values(status="crashed", finished_at=now, error=why)
                )
            else:
                s.execute(
                    update(TradeRun)
                    .where(TradeRun.id == c.run_id, TradeRun.status.in_(OPEN_STATUSES["trade"]))
                    .values(status="crashed", finished_at=now, message=why)
                )
    log = get_logger()
    for c in crashed:
        log.warning(c.line())
    if prefect:
        _crash_in_prefect([c.flow_run_id for c in crashed if c.flow_run_id])
    return crashed


def _crash_in_prefect(flow_run_ids: list[str]) -> None:
    """Best effort: set the Prefect flow runs Crashed (their process cannot report it any more)."""
    ids = []
    for fr_text in flow_run_ids:
        try:
            ids.append(UUID(fr_text))
        except ValueError:
            continue  # not a Prefect flow run id (a run started outside Prefect)
    if not ids:
        return
    try:
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        with get_client(sync_client=True) as client:
            for fr in ids:
                run = client.read_flow_run(fr)
                if run.state is not None and not run.state.is_final():
                    client.set_flow_run_state(
                        fr,
                        Crashed(message="its process died; marked by the next stockflow start"),
                        force=True,
                    )
    except Exception as err:  # the database is the record; Prefect's view is a courtesy
        get_logger().warning(f"could not mark the flow run(s) crashed in Prefect: {err}")
