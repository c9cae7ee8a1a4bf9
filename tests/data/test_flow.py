"""The ``ingest`` flow on a real Prefect API (artifacts, failure) and the ``stockflow ingest`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.data.conftest import bar_rows, trading_days, write_csv

DAYS = trading_days(25)


@pytest.fixture
def env_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings the flow and the CLI load from the environment, all under tmp_path."""
    monkeypatch.setenv("STOCKFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STOCKFLOW_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("STOCKFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'flow.db'}")
    rows = bar_rows("AAPL", DAYS) + bar_rows("MSFT", DAYS, base=300)
    rows[30]["low"] = -5.0  # one MSFT row breaks positive_prices
    write_csv(tmp_path / "bars.csv", rows)
    return tmp_path


def _artifacts(flow_run_id: Any) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        tasks = client.read_task_runs(flow_run_filter=None)
    names = sorted({t.name.rsplit("-", 1)[0] for t in tasks if t.flow_run_id == flow_run_id})
    return {"artifacts": {a.key: a for a in arts}, "tasks": names}


def test_ingest_flow_publishes_summary_and_data_docs_link(prefect_api: None, env_settings: Path) -> None:
    from flows.ingest import ingest_flow

    state = ingest_flow(source="files", path=str(env_settings / "bars.csv"), return_state=True)
    assert state.is_completed()
    report = state.result()
    assert report.rows_stored == 50 and report.quarantined_by_rule == {"positive_prices": 1}
    got = _artifacts(state.state_details.flow_run_id)
    assert got["tasks"] == ["fetch-bars", "store-and-quarantine", "validate-bars"]
    md = got["artifacts"]["ingest-summary"]
    assert (
        md.type == "markdown" and "| positive_prices | 1 |" in md.data and "| 50 | 50 | 50 | 1 |" in md.data
    )
    link = got["artifacts"]["data-docs"]
    assert "(http://127.0.0.1:8765/data_docs/validations/" in link.data  # Prefect renders links as markdown
    assert Path(report.data_docs_path).exists()


def test_ingest_flow_fails_loudly_and_says_why(prefect_api: None, env_settings: Path) -> None:
    from flows.ingest import ingest_flow
    from stockflow.errors import ValidationFailedError

    bad = write_csv(env_settings / "bad.csv", [dict(r, low=-1) for r in bar_rows("IBM", DAYS)])
    state = ingest_flow(source="files", path=str(bad), return_state=True)
    assert state.is_failed()
    with pytest.raises(
        ValidationFailedError, match=r"rule positive_prices: 25 rows, e\.g\. .*bad\.csv row 1 IBM"
    ):
        state.result()
    md = _artifacts(state.state_details.flow_run_id)["artifacts"]["ingest-summary"]
    assert "FAILED" in md.data and "ValidationFailedError" in md.data


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from stockflow.cli import main

    monkeypatch.setattr(sys, "argv", ["stockflow", *args])
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_cli_ingest_prints_summary_and_exits_nonzero_on_failure(
    prefect_api: None, env_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _cli(
            monkeypatch,
            "ingest",
            "--source",
            "files",
            "--path",
            str(env_settings / "bars.csv"),
            "--symbols",
            "AAPL",
            "--start",
            DAYS[5].isoformat(),
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ingest run 1 (files)" in out and "20" in out and "Data Docs:" in out

    assert _cli(monkeypatch, "ingest", "--source", "files", "--path", str(env_settings / "missing.csv")) == 2
    assert "does not exist" in capsys.readouterr().err

    assert _cli(monkeypatch, "ingest", "--source", "bogus") == 2
    assert _cli(monkeypatch, "ingest", "--source", "files", "--start", "yesterday") == 2


def test_fetch_task_retries_transient_failures_only(
    prefect_api: None, env_settings: Path, monkeypatch: pytest.MonkeyPatch, fake_alpaca: Any
) -> None:
    from flows.ingest import ingest_flow
    from stockflow.errors import SourceError
    from tests.fakes.alpaca_data import KEY_ID, SECRET, make_bar

    fake, url = fake_alpaca
    fake.bars["AAPL"] = [make_bar(d, 100.0 + i) for i, d in enumerate(DAYS)]
    monkeypatch.setenv("STOCKFLOW_DATA__ALPACA_DATA_URL", url)
    monkeypatch.setenv("STOCKFLOW_DATA__SYMBOLS", '["AAPL"]')
    monkeypatch.setenv("STOCKFLOW_DATA__FETCH_RETRIES", "1")
    monkeypatch.setenv("STOCKFLOW_BROKER__ALPACA_API_KEY", KEY_ID)
    monkeypatch.setenv("STOCKFLOW_BROKER__ALPACA_SECRET_KEY", SECRET)
    fake.inject(503)  # transient: the fetch task runs again and succeeds
    report = ingest_flow(source="alpaca", start=DAYS[0])
    assert report.rows_stored == len(DAYS)
    assert sum(1 for r in fake.requests if r["path"] == "/v2/stocks/bars") == 1 + 5  # 503, then 5 pages

    fake.requests.clear()
    monkeypatch.setenv("STOCKFLOW_BROKER__ALPACA_SECRET_KEY", "wrong")
    with pytest.raises(SourceError, match="HTTP 403"):  # a refusal is not retried
        ingest_flow(source="alpaca", symbols=["MSFT"])
    assert len(fake.requests) == 1
