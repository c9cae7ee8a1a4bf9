"""The retrain and monitor flows against a real Prefect API: tasks, artifacts, the retrain request."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from stockflow.config import load_settings
from stockflow.db import make_engine, transaction, upgrade
from stockflow.db.models_ml import DriftReportRow
from tests.models.conftest import SMALL_MODELS, SMALL_PORTFOLIO, SYMBOLS, store

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters


def _artifact(key: str) -> object | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    # The newest one: other tests sharing the API may have published under the same key before.
    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0] if found else None


def test_retrain_then_monitor_flows(
    prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reversal_bars: pl.DataFrame
) -> None:
    from prefect.client.orchestration import get_client

    from flows.monitor import monitor_flow
    from flows.retrain import retrain_flow

    monkeypatch.chdir(tmp_path)
    env = {
        "STOCKFLOW_DATA_DIR": str(tmp_path / "data"),
        "STOCKFLOW_REPORTS_DIR": str(tmp_path / "reports"),
        "STOCKFLOW_DATA__SYMBOLS": json.dumps(list(SYMBOLS)),
        "STOCKFLOW_MODELS": json.dumps({**SMALL_MODELS, "n_folds": 1}),
        "STOCKFLOW_PORTFOLIO": json.dumps(SMALL_PORTFOLIO),
        "STOCKFLOW_FEATURES__LABEL_HORIZON": "1",
        "STOCKFLOW_DRIFT__REFERENCE_DAYS": "50",
        "STOCKFLOW_DRIFT__DRIFT_SHARE_THRESHOLD": "0.0",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = load_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    store(engine, reversal_bars)

    # Nothing to monitor before the first champion: a clear NoModel outcome, not a failure.
    state = monitor_flow(return_state=True)
    assert state.name == "NoModel" and "no champion model" in (state.message or "")
    assert not state.is_completed(), "no green badge for a check that checked nothing (issue 11)"

    # The LSTM runs inside the flow too (one epoch on tiny windows).
    out = retrain_flow(kinds=["lightgbm", "lstm"])
    assert out["promoted"] and out["champion_after"] == out["candidate"], out["reason"]
    assert set(out["challengers"]) == {"lightgbm", "lstm"}
    table = _artifact("retrain-metrics")
    assert table is not None and table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {"lightgbm", "lstm", "always_up", "yesterday", "momentum"} <= {r["model"] for r in rows}
    card = _artifact("retrain-model-card")
    assert card is not None and card.type == "markdown" and "Decision:** promoted" in str(card.data)

    # A 'retrain' deployment exists: drift above the (zero) threshold starts a run of it.
    with get_client(sync_client=True) as c:
        flow_id = c.create_flow_from_name("retrain")
        c.create_deployment(flow_id=flow_id, name="on-drift", entrypoint="flows/retrain.py:retrain_flow")
    summary = monitor_flow()
    assert summary["dataset_drift"] and summary["retrain_requested"]
    assert "flow run" in summary["retrain_request"] and "retrain/on-drift" in summary["retrain_request"]
    link = _artifact("drift-report")
    assert link is not None and f"({summary['url']})" in str(link.data)
    assert _artifact("drift-columns") is not None
    with transaction(engine) as s:
        row = s.scalars(select(DriftReportRow)).one()
        assert row.retrain_requested and Path(row.report_path or "").is_file()
