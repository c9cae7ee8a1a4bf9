"""One rule for the CLI: ``stockflow retrain`` runs the ``retrain`` flow, so it publishes the same
artifacts as a run started from the UI (against a real Prefect API)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from stockflow.cli import app
from stockflow.config import load_settings
from stockflow.db import make_engine, transaction, upgrade
from stockflow.db.models_ml import RetrainRun
from tests.models.conftest import SMALL_MODELS, SYMBOLS, store


def _artifact_keys(flow_run_id: str | None) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    assert flow_run_id, "the retrain was not a flow run"
    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key for a in found if a.key}


def _last_flow_run_id(engine: object) -> str | None:
    with transaction(engine) as s:  # type: ignore[arg-type]
        return s.scalars(select(RetrainRun.flow_run_id).order_by(RetrainRun.id.desc()).limit(1)).first()


def test_cli_retrain_publishes_the_artifacts_of_the_flow(
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
    }.items():
        monkeypatch.setenv(k, v)
    engine = make_engine(load_settings().db_url)
    upgrade(engine)
    store(engine, reversal_bars)

    out = CliRunner().invoke(app, ["retrain", "--kinds", "lightgbm"])
    assert out.exit_code == 0, out.output
    assert "registered lightgbm:" in out.output and "champion:" in out.output
    cli_keys = _artifact_keys(_last_flow_run_id(engine))

    retrain_flow(kinds=["lightgbm"])
    flow_keys = _artifact_keys(_last_flow_run_id(engine))
    assert flow_keys == {"retrain-metrics", "retrain-model-card"}
    assert cli_keys == flow_keys

    # A bad kind is still one clear line (ConfigError), not a flow parameter error.
    bad = CliRunner().invoke(app, ["retrain", "--kinds", "xgboost"])
    assert bad.exit_code != 0 and "unknown model kind(s) ['xgboost']" in str(bad.exception)
