"""One rule for the CLI: ``stockflow backtest`` (with its report, the default) runs the ``backtest`` flow,
so it records the run and publishes the same artifacts as a run from the UI (real Prefect API)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from stockflow.backtest.service import list_runs
from stockflow.config import Settings
from tests.backtest.test_flow import stored  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("prefect_api")


def _newest(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0] if found else None


def test_cli_backtest_runs_the_flow(stored: tuple[Settings, Engine]) -> None:  # noqa: F811
    from stockflow.cli import app

    _, engine = stored
    before = dt.datetime.now(dt.UTC)
    args = ["backtest", "--strategies", "sma,rsi", "--symbols", "AAA,BBB", "--start", "2015-06-01"]
    res = CliRunner().invoke(app, [*args, "--end", "2016-03-31"])
    assert res.exit_code == 0, res.output
    assert "sma_crossover" in res.output and "2 symbols" in res.output and "tearsheet: " in res.output
    for key in ("backtest-comparison", "backtest-tearsheet"):
        art = _newest(key)
        assert art is not None and art.created is not None and art.created >= before, key
        assert art.flow_run_id is not None, key
    (run,) = list_runs(engine)
    assert run.status == "succeeded" and run.flow_run_id == str(_newest("backtest-comparison").flow_run_id)
