"""Every area's report links name the file the reports server serves, also with a relative reports_dir.

A link artifact that points one directory too deep opens a 404 in the UI; this caught one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stockflow.backtest.service import report_url as backtest_url
from stockflow.config import load_settings
from stockflow.ml.drift import report_url as drift_url
from stockflow.ops.reports import report_url as served_url
from stockflow.pipeline.report import reports_url as pipeline_url
from stockflow.validation import report_url as validation_url


@pytest.mark.parametrize("builder", [pipeline_url, drift_url, backtest_url, validation_url, served_url])
def test_links_are_relative_to_the_served_directory(
    builder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(reports_dir=Path("reports"))  # relative, as in the defaults
    path = settings.reports_dir / "equity" / "index.html"
    url = builder(settings, path.resolve() if builder is served_url else path)
    assert url == f"http://127.0.0.1:{settings.server.reports_port}/equity/index.html"
