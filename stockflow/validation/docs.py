"""Where the Data Docs live and how to link to reports served over HTTP."""

from __future__ import annotations

from pathlib import Path

from stockflow.config import Settings


def data_docs_dir(settings: Settings) -> Path:
    """The Data Docs site directory (inside the reports directory)."""
    return settings.reports_dir / "data_docs"


def data_docs_index(settings: Settings) -> Path:
    """The Data Docs index page."""
    return data_docs_dir(settings) / "index.html"


def report_url(settings: Settings, path: str | Path) -> str:
    """``http://host:reports_port/<path relative to reports_dir>`` for a file under the reports directory,
    as served by the ops area's reports server (``stockflow.ops.reports.report_url``: honours
    ``STOCKFLOW_REPORTS_URL``). A path outside the reports directory is returned as a ``file://`` URL."""
    from stockflow.ops.reports import report_url as served_url

    p = Path(path).resolve()
    if not p.is_relative_to(settings.reports_dir.resolve()):
        return p.as_uri()
    return served_url(settings, p)
