"""Report links name the file the reports server serves, also with a relative reports_dir.

A link artifact that points one directory too deep opens a 404 in the UI; this caught one. Every area
(trade run, drift, backtest, Data Docs) links through the one helper, ``stockflow.ops.reports.report_url``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stockflow.config import load_settings
from stockflow.ops.reports import report_url


@pytest.mark.parametrize("resolved", [False, True], ids=["as-built", "resolved"])
def test_links_are_relative_to_the_served_directory(
    resolved: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(reports_dir=Path("reports"))  # relative, as in the defaults
    path = settings.reports_dir / "equity" / "index.html"
    url = report_url(settings, path.resolve() if resolved else path)
    assert url == f"http://127.0.0.1:{settings.server.reports_port}/equity/index.html"
    assert report_url(settings) == f"http://127.0.0.1:{settings.server.reports_port}/"
