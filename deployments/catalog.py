"""The one list of stockflow's deployments: names, entrypoints, default parameters, tags, schedules, limits.

``deployments/serve.py`` builds the served deployments from it and ``prefect.yaml`` declares the same
deployments for ``prefect deploy`` (a test checks that both agree; :func:`render_prefect_yaml` writes the
file). Schedules are cron expressions in America/New_York, so they follow the exchange's clock through
daylight-saving changes.

Concurrency: ``trade`` and ``kill-switch`` run at most one at a time (a deployment concurrency limit; the
trade flow also holds the database trading lock, which covers its approval pause, see GLOBAL_LIMITS).
A second ``trade`` run while one is running is cancelled rather than queued: a queued trade would run
late, on a session that is no longer the current one. Kill-switch changes queue, so every change of the
trading state is applied, in order. Retrain is limited to one at a time because two trainings would
share two CPU cores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: Time zone of every schedule: the exchange's.
TIMEZONE = "America/New_York"
#: Work pool used by the ``prefect deploy`` route (``stockflow up`` serves and needs none).
WORK_POOL = "stockflow"
#: Tag carried by every stockflow deployment.
PROJECT_TAG = "stockflow"

#: Global concurrency limits created (or updated) when the deployments are registered: name -> slots.
#: None for now. Note: Prefect's *deployment* concurrency limit releases its slot while a run is Paused, so
#: on its own it lets a second trade run start while the first waits for approval; the trade flow closes
#: that gap with the database trading lock (stockflow.execution.run_lock) held across the pause. A flow
#: that needs the same with Prefect alone holds a global limit listed here with
#: ``prefect.concurrency.sync.concurrency(name, strict=True)`` around its pause (tests/ops/standin.py).
GLOBAL_LIMITS: Mapping[str, int] = {}

CollisionStrategy = Literal["ENQUEUE", "CANCEL_NEW"]


@dataclass(frozen=True)
class ScheduleSpec:
    """A cron schedule in :data:`TIMEZONE`. (No slug: Prefect's UI then shows the schedule in words,
    "At 04:30 PM, Monday through Friday (America/New_York)"; re-registering replaces a deployment's
    schedules either way, so nothing is duplicated.)"""

    cron: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConcurrencySpec:
    """At most ``limit`` running flow runs of the deployment; what happens to one more."""

    limit: int
    collision_strategy: CollisionStrategy = "ENQUEUE"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment. ``name`` is both the flow name and the deployment name (``trade/trade``)."""

    name: str
    entrypoint: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    concurrency: ConcurrencySpec | None = None
    #: Default parameters taken from stockflow's settings when the deployments are served
    #: (parameter -> dotted settings path), e.g. the trade mode from ``trading.mode``.
    settings_parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def flow_name(self) -> str:
        """The Prefect flow name the entrypoint must carry."""
        return self.name

    @property
    def full_name(self) -> str:
        """``flow/deployment``, as ``prefect deployment run`` takes it."""
        return f"{self.flow_name}/{self.name}"

    @property
    def all_tags(self) -> list[str]:
        """The project tag plus this deployment's own tags."""
        return [PROJECT_TAG, *self.tags]


CATALOG: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        name="trade",
        entrypoint="flows/trade.py:trade_flow",
        description=(
            "Daily trading pipeline after the close: ingest -> validate -> features -> predict -> signals "
            "-> risk -> approval -> execute -> reconcile -> snapshot. The default mode is the setting "
            "trading.mode when `stockflow up` started; hybrid and manual pause for approval in the UI."
        ),
        parameters={},
        settings_parameters={"mode": "trading.mode"},
        tags=("trading",),
        schedules=(
            ScheduleSpec(
                cron="30 16 * * 1-5",
                description="Weekdays 16:30 New York, after the 16:00 close (no run on weekends).",
            ),
        ),
        concurrency=ConcurrencySpec(limit=1, collision_strategy="CANCEL_NEW"),
    ),
    DeploymentSpec(
        name="ingest",
        entrypoint="flows/ingest.py:ingest_flow",
        description="Fetch daily bars, store them, validate with Great Expectations, quarantine bad rows.",
        parameters={},
        tags=("data",),
        schedules=(
            ScheduleSpec(
                cron="10 16 * * 1-5",
                description="Weekdays 16:10 New York, so the trade run at 16:30 finds fresh bars.",
            ),
        ),
    ),
    DeploymentSpec(
        name="retrain",
        entrypoint="flows/retrain.py:retrain_flow",
        description="Walk-forward training of every model kind, evaluation against baselines, promotion.",
        parameters={},
        tags=("ml",),
        schedules=(
            ScheduleSpec(
                cron="0 6 * * 6",
                description="Saturdays 06:00 New York; run it on demand from the UI or the CLI too.",
            ),
        ),
        concurrency=ConcurrencySpec(limit=1, collision_strategy="ENQUEUE"),
    ),
    DeploymentSpec(
        name="monitor",
        entrypoint="flows/monitor.py:monitor_flow",
        description="Evidently drift report of features and predictions; may request a retrain.",
        parameters={},
        tags=("ml", "monitoring"),
        schedules=(
            ScheduleSpec(
                cron="0 18 * * 1-5",
                description="Weekdays 18:00 New York, after the trade run.",
            ),
        ),
    ),
    DeploymentSpec(
        name="backtest",
        entrypoint="flows/backtest.py:backtest_flow",
        description="Vectorized backtest of the strategies with costs; publishes a tearsheet. On demand.",
        parameters={},
        tags=("research",),
    ),
    DeploymentSpec(
        name="kill-switch",
        entrypoint="flows/kill_switch.py:kill_switch_flow",
        description=(
            "Set the trading state: HALTED stops all trading (the default of this deployment), REDUCING "
            "allows only orders that reduce positions, ACTIVE resumes. On demand."
        ),
        parameters={"state": "HALTED", "reason": "kill switch pressed in the Prefect UI"},
        tags=("trading", "safety"),
        concurrency=ConcurrencySpec(limit=1, collision_strategy="ENQUEUE"),
    ),
)


def by_name(name: str, catalog: tuple[DeploymentSpec, ...] = CATALOG) -> DeploymentSpec:
    """The spec called ``name``; ``KeyError`` listing the known names otherwise."""
    for spec in catalog:
        if spec.name == name:
            return spec
    raise KeyError(f"no deployment {name!r}; known: {', '.join(s.name for s in catalog)}")


def default_parameters(spec: DeploymentSpec, settings: Any | None = None) -> dict[str, Any]:
    """``spec.parameters`` plus the ones read from ``settings`` (default settings when None)."""
    params = dict(spec.parameters)
    if spec.settings_parameters:
        if settings is None:
            from stockflow.config.settings import Settings

            settings = Settings.model_construct()  # defaults only, no file or environment
        for name, path in spec.settings_parameters.items():
            value: Any = settings
            for part in path.split("."):
                value = getattr(value, part)
            params[name] = value
    return params


def prefect_yaml_dict(catalog: tuple[DeploymentSpec, ...] = CATALOG) -> dict[str, Any]:
    """The content of ``prefect.yaml`` for ``catalog`` (for ``prefect deploy --all`` with a process pool).

    Parameters taken from settings appear with their default values (``stockflow up`` uses the actual
    settings).
    """
    deployments: list[dict[str, Any]] = []
    for spec in catalog:
        d: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "entrypoint": spec.entrypoint,
            "parameters": default_parameters(spec),
            "tags": spec.all_tags,
            "schedules": [
                {
                    "cron": s.cron,
                    "timezone": TIMEZONE,
                    "active": True,
                    **({"parameters": dict(s.parameters)} if s.parameters else {}),
                }
                for s in spec.schedules
            ],
            "enforce_parameter_schema": True,
            "work_pool": {"name": WORK_POOL, "work_queue_name": None, "job_variables": {}},
        }
        if spec.concurrency is not None:
            d["concurrency_limit"] = {
                "limit": spec.concurrency.limit,
                "collision_strategy": spec.concurrency.collision_strategy,
            }
        deployments.append(d)
    return {
        "name": "stockflow",
        "prefect-version": "3.8.8",
        "build": None,
        "push": None,
        # Flows import the project's packages (stockflow, tasks, models): run them from the project root,
        # i.e. start the worker there (`prefect worker start --pool stockflow`).
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}],
        "deployments": deployments,
    }


_HEADER = """\
# Deployments of stockflow for `prefect deploy` (GENERATED from deployments/catalog.py by
# `python -m deployments.catalog > prefect.yaml`; a test fails when the two differ).
#
# The usual way to run them is `stockflow up` (server + UI + served deployments + reports server), which
# needs no work pool. This file is the other route, with a process work pool:
#   prefect work-pool create stockflow --type process
#   prefect deploy --all
#   prefect worker start --pool stockflow        # from the project root
# Schedules are in America/New_York.
"""


def render_prefect_yaml(catalog: tuple[DeploymentSpec, ...] = CATALOG) -> str:
    """``prefect.yaml`` as text: a header comment and :func:`prefect_yaml_dict` as YAML."""
    import yaml

    return _HEADER + yaml.safe_dump(prefect_yaml_dict(catalog), sort_keys=False, width=100)


if __name__ == "__main__":
    print(render_prefect_yaml(), end="")
