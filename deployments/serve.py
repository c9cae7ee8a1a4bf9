"""Register stockflow's deployments with their schedules and run them: ``python -m deployments.serve``.

Started by ``stockflow up`` (which also starts the Prefect server and the reports server); it can also be
run alone against any Prefect API (``PREFECT_API_URL``). Registering is an upsert by flow and deployment
name that replaces the deployment's schedules, so starting again updates the deployments instead of
duplicating them.

When this process stops (Ctrl-C, SIGTERM) Prefect pauses the served deployments and deletes their future
scheduled runs: nothing piles up as "late" while the operation is down. Starting again resumes them.

A flow whose entrypoint cannot be loaded (a broken import) is reported by name and left out; the others are
still served, so one broken flow does not take the kill switch down with it. ``--strict`` refuses instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from deployments.catalog import CATALOG, GLOBAL_LIMITS, TIMEZONE, DeploymentSpec, default_parameters

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

#: The project root: entrypoints (``flows/trade.py:trade_flow``) are relative to it.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LoadFailure:
    """A deployment left out because its flow could not be loaded."""

    name: str
    entrypoint: str
    error: str


def load_catalog(ref: str | None) -> tuple[DeploymentSpec, ...]:
    """The catalog named by ``module:attribute`` (default: :data:`deployments.catalog.CATALOG`)."""
    if not ref:
        return CATALOG
    module_name, _, attr = ref.partition(":")
    value = getattr(importlib.import_module(module_name), attr or "CATALOG")
    return tuple(value)


def load_global_limits(ref: str | None) -> dict[str, int]:
    """The global concurrency limits of the catalog module named by ``ref`` (default: the project's)."""
    if not ref:
        return dict(GLOBAL_LIMITS)
    module = importlib.import_module(ref.partition(":")[0])
    return dict(getattr(module, "GLOBAL_LIMITS", {}))


def ensure_global_limits(limits: dict[str, int]) -> None:
    """Create each global concurrency limit, or set its number of slots (idempotent)."""
    if not limits:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for name, slots in limits.items():
            client.upsert_global_concurrency_limit_by_name(name, slots)


def build_deployment(
    spec: DeploymentSpec, root: Path = PROJECT_ROOT, settings: Any = None
) -> RunnerDeployment:
    """The served deployment for ``spec``: schedules in New York time, limits, tags, default parameters
    (those taken from settings read from ``settings``, default: the loaded settings).

    Loading the entrypoint imports the flow module; errors propagate.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    path, _, func = spec.entrypoint.partition(":")
    flow: Flow[..., Any] = load_flow_from_entrypoint(f"{root / path}:{func}")
    if flow.name != spec.flow_name:
        raise ValueError(
            f"{spec.entrypoint} defines flow {flow.name!r}, but the catalog expects {spec.flow_name!r}"
        )
    concurrency: ConcurrencyLimitConfig | None = None
    if spec.concurrency is not None:
        concurrency = ConcurrencyLimitConfig(
            limit=spec.concurrency.limit,
            collision_strategy=ConcurrencyLimitStrategy(spec.concurrency.collision_strategy),
        )
    deployment = cast(
        "RunnerDeployment",
        flow.to_deployment(
            name=spec.name,
            # to_deployment(cron=...) has no time zone: build the schedules ourselves.
            schedules=[
                Cron(s.cron, timezone=TIMEZONE, parameters=dict(s.parameters) or None) for s in spec.schedules
            ],
            concurrency_limit=concurrency,
            parameters=default_parameters(spec, settings if settings is not None else _settings()),
            description=spec.description,
            tags=spec.all_tags,
            enforce_parameter_schema=True,
        ),
    )
    # Entrypoints stay relative to the project root (the serve process runs there), so the deployment
    # shows "flows/trade.py:trade_flow" and not a path of this machine.
    deployment.entrypoint = spec.entrypoint
    return deployment


def _settings() -> Any:
    from stockflow.config import load_settings

    return load_settings()


def build_deployments(
    catalog: Sequence[DeploymentSpec] = CATALOG, *, strict: bool = False, root: Path = PROJECT_ROOT
) -> tuple[list[RunnerDeployment], list[LoadFailure]]:
    """Build every deployment of ``catalog``; failures are collected (or raised when ``strict``)."""
    built: list[RunnerDeployment] = []
    failures: list[LoadFailure] = []
    for spec in catalog:
        try:
            built.append(build_deployment(spec, root))
        except Exception as err:
            if strict:
                raise
            failures.append(LoadFailure(spec.name, spec.entrypoint, f"{type(err).__name__}: {err}"))
    return built, failures


def wait_for_api(api_url: str, timeout_s: float) -> bool:
    """Poll ``<api_url>/health`` until it answers 200; False after ``timeout_s``."""
    import os
    import time

    from stockflow.ops.api import http_get

    auth = os.environ.get("PREFECT_API_AUTH_STRING") or None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_get(f"{api_url}/health", auth=auth, timeout=2)[0] == 200:
            return True
        time.sleep(0.25)
    return False


def write_ready_file(path: Path, deployments: Sequence[Any], failures: Sequence[LoadFailure]) -> None:
    """Tell ``stockflow up`` what this process serves and what it left out (written atomically)."""
    import json
    import os

    payload = {
        "pid": os.getpid(),
        "served": [f"{d.flow_name}/{d.name}" for d in deployments],
        "left_out": [f.name for f in failures],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the deployments until interrupted. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", help="module:attribute of another catalog (tests use this)")
    parser.add_argument("--strict", action="store_true", help="refuse to start when a flow does not load")
    parser.add_argument("--limit", type=int, default=None, help="max flow runs at the same time")
    parser.add_argument(
        "--wait-api",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the Prefect API to be healthy before registering",
    )
    parser.add_argument(
        "--cancel-unfinished",
        action="store_true",
        help="before serving, cancel runs of these deployments left Paused/Running by a process that died",
    )
    parser.add_argument(
        "--ready-file",
        default=None,
        metavar="PATH",
        help="write what is served and what was left out to PATH (JSON) just before serving",
    )
    args = parser.parse_args(argv)

    import os

    os.chdir(PROJECT_ROOT)
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    catalog = load_catalog(args.catalog)
    deployments, failures = build_deployments(catalog, strict=args.strict)
    for f in failures:
        print(
            f"stockflow: deployment {f.name!r} left out: {f.entrypoint} did not load ({f.error})", flush=True
        )
    if not deployments:
        print("stockflow: no deployment could be loaded; nothing to serve", file=sys.stderr, flush=True)
        return 1

    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value() or ""
    if args.wait_api and not wait_for_api(api_url, args.wait_api):
        print(
            f"stockflow: the Prefect API at {api_url} did not answer within {args.wait_api:.0f}s", flush=True
        )
        return 1
    if args.cancel_unfinished and api_url:
        from stockflow.ops.api import settle_runs

        cancelled = settle_runs(
            api_url,
            [s.full_name for s in catalog],
            "left unfinished by a previous `stockflow up` that did not stop cleanly",
            pause=False,
            auth=os.environ.get("PREFECT_API_AUTH_STRING") or None,
        )
        if cancelled:
            print(f"stockflow: cancelled {len(cancelled)} run(s) left unfinished: {cancelled}", flush=True)
    ensure_global_limits(load_global_limits(args.catalog))

    names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments)
    print(f"stockflow: serving {len(deployments)} deployment(s): {names}", flush=True)
    if args.ready_file:
        write_ready_file(Path(args.ready_file), deployments, failures)
    serve(*deployments, limit=args.limit, print_starting_message=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
