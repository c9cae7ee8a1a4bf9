"""The command line in a subprocess: every expected error is ONE line on stderr, never a traceback.

All cases run through the real entry point (``stockflow.cli.main``) in one subprocess (see
``cli_driver``); one more runs a real ``stockflow ingest`` whose flow fails validation on the ephemeral
Prefect API, to show that neither the flow run's log nor the command prints a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.badinput.corpus import CLI_CASES, cli_cases
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # a whole module of real servers, subprocesses or clusters


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STOCKFLOW_") or k.startswith("STOCKFLOW_TEST_")
    }
    env.update(
        STOCKFLOW_CONFIG="",
        STOCKFLOW_DATA_DIR=str(tmp_path / "data"),
        STOCKFLOW_REPORTS_DIR=str(tmp_path / "reports"),
        PYTHONPATH=str(ROOT),
    )
    env.pop("PREFECT_API_URL", None)
    return env


def _only_the_error_line(stderr: str) -> list[str]:
    """stderr minus lines that are not errors (a warning, Prefect's INFO lines of a flow run)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("error")]


def test_each_expected_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    cases = cli_cases(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "tests.badinput.cli_driver"],
        input=json.dumps([[c.name, c.argv, c.env] for c in cases]),
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    got = {d["name"]: d for d in map(json.loads, res.stdout.splitlines())}
    assert set(got) == {c.name for c in cases}
    for c in cases:
        d = got[c.name]
        assert ("Traceback" in d["stderr"]) == c.expect_traceback, f"{c.name}: {d['stderr']}"
        errors = _only_the_error_line(d["stderr"])
        if c.expect_warning:
            assert c.expect in d["stderr"], f"{c.name}: {d['stderr']}"
            continue
        assert d["code"] == 2, f"{c.name}: exit {d['code']}: {d['stderr']}"
        assert len(errors) == 1 and c.expect in errors[0], f"{c.name}: {d['stderr']}"
    assert len(cases) == len(CLI_CASES)


@pytest.mark.usefixtures("prefect_api")
def test_failing_ingest_flow_logs_one_line_no_prefect_traceback(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL

    from tests.data.conftest import bar_rows, trading_days, write_csv

    d = tmp_path / "in"
    d.mkdir()
    rows = bar_rows("BAD", trading_days(10))
    for r in rows:
        r["close"] = -1.0  # every row breaks positive_prices: validation fails for the only file
    write_csv(d / "bad.csv", rows)
    res = subprocess.run(
        [str(Path(sys.executable).parent / "stockflow"), "ingest", "--source", "files", "--path", str(d)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **_env(tmp_path),
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOGGING_LEVEL": "INFO",
        },
        timeout=400,
    )
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    errors = _only_the_error_line(res.stderr)
    assert len(errors) == 1 and "validation failed" in errors[0]
    # The flow run's own log, as stored by the API, says it in one line too: no traceback there either.
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort="START_TIME_DESC", limit=20)
        run = next(r for r in runs if r.parameters.get("path") == str(d))
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200
        )
        assert run.state is not None and run.state.is_failed()
    messages = [log.message for log in logs]
    assert any("validation failed" in m for m in messages), messages
    assert not any("Traceback" in m for m in messages), messages
