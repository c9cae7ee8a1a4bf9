"""The deployment catalog: one source of truth for prefect.yaml and the served deployments."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import itertools
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from prefect.server.schemas.schedules import CronSchedule

from deployments.catalog import CATALOG, TIMEZONE, by_name, default_parameters, render_prefect_yaml
from deployments.serve import build_deployment

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")


def _fire_times(cron: str, start: dt.datetime, n: int) -> list[dt.datetime]:
    dates: Any = CronSchedule(cron=cron, timezone=TIMEZONE).get_dates(n=n, start=start)
    if inspect.isawaitable(dates):  # Prefect's sync/async dual method
        dates = asyncio.run(dates)  # type: ignore[arg-type]
    return list(dates)


def test_prefect_yaml_is_generated_from_the_catalog() -> None:
    on_disk = (ROOT / "prefect.yaml").read_text()
    assert on_disk == render_prefect_yaml(), "run `python -m deployments.catalog > prefect.yaml`"
    doc = yaml.safe_load(on_disk)
    assert [d["name"] for d in doc["deployments"]] == [s.name for s in CATALOG]
    for d in doc["deployments"]:
        for sched in d["schedules"]:
            assert sched["timezone"] == "America/New_York"


def test_catalog_matches_the_entrypoint_table_of_the_design_doc() -> None:
    design = (ROOT / "docs" / "design.md").read_text()
    table = dict(re.findall(r"^\| `(flows/[\w./]+:\w+)` \| `([\w-]+)` \|", design, flags=re.MULTILINE))
    assert table, "entrypoint table not found in docs/design.md"
    assert {s.entrypoint: s.flow_name for s in CATALOG} == table


def test_every_required_deployment_is_declared_with_its_schedule() -> None:
    names = [s.name for s in CATALOG]
    assert len(names) == len(set(names))
    assert set(names) == {"trade", "ingest", "retrain", "monitor", "backtest", "kill-switch"}
    assert by_name("backtest").schedules == () and by_name("kill-switch").schedules == ()
    assert by_name("kill-switch").parameters["state"] == "HALTED"


def test_trade_runs_on_weekdays_after_the_close_in_new_york_time_across_dst() -> None:
    (sched,) = by_name("trade").schedules
    # Friday 8 March 2024, 17:00 New York; clocks go forward on Sunday 10 March.
    fires = _fire_times(sched.cron, dt.datetime(2024, 3, 8, 17, 0, tzinfo=NY), 3)
    local = [f.astimezone(NY) for f in fires]
    assert [d.date() for d in local] == [dt.date(2024, 3, 11), dt.date(2024, 3, 12), dt.date(2024, 3, 13)]
    assert all((d.hour, d.minute) == (16, 30) for d in local)  # after the 16:00 close, on the NY clock
    utc = [f.astimezone(dt.UTC) for f in fires]
    assert utc[0].hour == 20  # EDT; it was 21:30 UTC the Friday before
    before = _fire_times(sched.cron, dt.datetime(2024, 3, 7, 17, 0, tzinfo=NY), 1)[0]
    assert before.astimezone(dt.UTC).hour == 21


def test_ingest_runs_before_trade_and_retrain_weekly() -> None:
    start = dt.datetime(2024, 6, 3, 0, 0, tzinfo=NY)  # a Monday
    ingest = _fire_times(by_name("ingest").schedules[0].cron, start, 1)[0]
    trade = _fire_times(by_name("trade").schedules[0].cron, start, 1)[0]
    assert ingest < trade and ingest.astimezone(NY).hour >= 16
    retrain = _fire_times(by_name("retrain").schedules[0].cron, start, 3)
    assert [(b - a).days for a, b in itertools.pairwise(retrain)] == [7, 7]


def test_trading_deployments_never_run_twice_at_once() -> None:
    trade, kill = by_name("trade"), by_name("kill-switch")
    assert trade.concurrency is not None and trade.concurrency.limit == 1
    assert trade.concurrency.collision_strategy == "CANCEL_NEW"  # a queued trade would run late
    assert kill.concurrency is not None and kill.concurrency.limit == 1
    assert kill.concurrency.collision_strategy == "ENQUEUE"  # every state change applies, in order
    # The deployment limit releases its slot while a run is Paused (tests/ops/test_local_operation.py
    # shows it); the trade flow covers its pause with the database trading lock.
    trade_src = (ROOT / "flows" / "trade.py").read_text()
    assert "run_lock(" in trade_src


def test_trade_mode_default_comes_from_the_settings() -> None:
    from stockflow.config import load_settings

    spec = by_name("trade")
    assert default_parameters(spec) == {"mode": "auto"}  # what prefect.yaml shows
    hybrid = load_settings(trading={"mode": "hybrid"})
    assert default_parameters(spec, hybrid) == {"mode": "hybrid"}  # what `stockflow up` serves
    assert build_deployment(spec, settings=hybrid).parameters == {"mode": "hybrid"}


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_served_deployment_matches_its_spec_and_defaults_validate(spec) -> None:  # type: ignore[no-untyped-def]
    if not (ROOT / spec.entrypoint.split(":")[0]).exists():
        pytest.skip(f"{spec.entrypoint} not written yet")
    from prefect.utilities.schema_tools import validate

    dep = build_deployment(spec)
    assert dep.name == spec.name and dep.flow_name == spec.flow_name
    assert dep.entrypoint == spec.entrypoint
    assert [getattr(s.schedule, "timezone", None) for s in dep.schedules or []] == [TIMEZONE] * len(
        spec.schedules
    )
    assert dep.enforce_parameter_schema
    assert set(dep.tags) >= {"stockflow"}
    # The catalog's default parameters are valid for the flow's typed signature.
    schema = dep._parameter_openapi_schema.model_dump(mode="json")
    validate(default_parameters(spec), schema, raise_on_error=True, ignore_required=True)
