"""One rule for the CLI: ``stockflow retrain`` and ``stockflow monitor`` run their flows, so they publish
the same artifacts as runs started from the UI (against a real Prefect API)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from stockflow.cli import app
from stockflow.config import load_settings
from stockflow.db import make_engine, transaction, upgrade
from stockflow.db.models_ml import RetrainRun
from tests.models.conftest import SMALL_MODELS, SYMBOLS, store

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters


def _artifact_keys(flow_run_id: str | None) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    assert flow_run_id, "the retrain was not a flow run"
    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key for a in found if a.key}


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


def _last_flow_run_id(engine: object) -> str | None:
    with transaction(engine) as s:  # type: ignore[arg-type]
        return s.scalars(select(RetrainRun.flow_run_id).order_by(RetrainRun.id.desc()).limit(1)).first()


def test_cli_retrain_and_monitor_publish_the_artifacts_of_the_flows(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reversal_bars: pl.DataFrame
) -> None:
    from flows.retrain import retrain_flow

    monkeypatch.chdir(tmp_path)
    for k, v in {
        "STOCKFLOW_DATA_DIR": str(tmp_path / "data"),
        "STOCKFLOW_REPORTS_DIR": str(tmp_path / "reports"),
        "STOCKFLOW_DATA__SYMBOLS": json.dumps(list(SYMBOLS)),
        "STOCKFLOW_MODELS": json.dumps({**SMALL_MODELS, "n_folds": 1}),
        "STOCKFLOW_FEATURES__LABEL_HORIZON": "1",
        "STOCKFLOW_DRIFT__REFERENCE_DAYS": "50",
    }.items():
        monkeypatch.setenv(k, v)
    engine = make_engine(load_settings().db_url)
    upgrade(engine)
    store(engine, reversal_bars)

    # No champion yet: the monitor flow ends NoModel; the command says so in one line.
    none = CliRunner().invoke(app, ["monitor"])
    assert none.exit_code != 0 and "no champion model" in str(none.exception)

    out = CliRunner().invoke(app, ["retrain", "--kinds", "lightgbm"])
    assert out.exit_code == 0, out.output
    assert "registered lightgbm:" in out.output and "champion:" in out.output
    cli_keys = _artifact_keys(_last_flow_run_id(engine))

    retrain_flow(kinds=["lightgbm"])
    flow_keys = _artifact_keys(_last_flow_run_id(engine))
    assert flow_keys == {"retrain-metrics", "retrain-model-card"}
    assert cli_keys == flow_keys

    version = out.output.split("registered lightgbm: ")[1].split()[0]
    promoted = CliRunner().invoke(app, ["models", "promote", version, "--force", "--reason", "test"])
    assert promoted.exit_code == 0, promoted.output

    # `stockflow monitor` runs the monitor flow: its artifacts belong to a flow run of this check.
    before = dt.datetime.now(dt.UTC)
    out = CliRunner().invoke(app, ["monitor"])
    assert out.exit_code == 0, out.output
    assert "drift share" in out.output and "drifted columns" in out.output
    for key in ("drift-report", "drift-columns"):
        art = _newest(key)
        assert art is not None and art.created is not None and art.created >= before, key
        assert art.flow_run_id is not None, key

    # A bad kind is still one clear line (ConfigError), not a flow parameter error.
    bad = CliRunner().invoke(app, ["retrain", "--kinds", "xgboost"])
    assert bad.exit_code != 0 and "unknown model kind(s) ['xgboost']" in str(bad.exception)
