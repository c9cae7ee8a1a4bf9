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
    """``http://host:reports_port/<path relative to reports_dir>`` for a file under the reports directory
    (the ops area serves that directory). A path outside it is returned as a ``file://`` URL."""
    p = Path(path).resolve()
    root = settings.reports_dir.resolve()
    try:
        rel = p.relative_to(root)
    except ValueError:
        return p.as_uri()
    s = settings.server
    return f"http://{s.host}:{s.reports_port}/{rel.as_posix()}"
