"""Where the Data Docs live (links to them: :func:`stockflow.ops.reports.report_url`)."""

from __future__ import annotations

from pathlib import Path

from stockflow.config import Settings


def data_docs_dir(settings: Settings) -> Path:
    """The Data Docs site directory (inside the reports directory)."""
    return settings.reports_dir / "data_docs"


def data_docs_index(settings: Settings) -> Path:
    """The Data Docs index page."""
    return data_docs_dir(settings) / "index.html"
