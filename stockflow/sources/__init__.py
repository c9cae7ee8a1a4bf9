"""Bar sources behind one small protocol: ``sample``, ``files``, ``alpaca``, ``yfinance``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stockflow.choices import SOURCE_NAMES
from stockflow.config import Settings
from stockflow.errors import ConfigError
from stockflow.sources.base import DataSource, FetchResult, Reject


def get_source(
    name: str,
    settings: Settings,
    path: str | None = None,
    *,
    raw_dir: Path | None = None,
    session: Any = None,
) -> DataSource:
    """Build the source called ``name``. ``path`` is for ``files`` (default: settings data.path);
    ``raw_dir`` is where remote payloads are copied; ``session`` is an HTTP session for ``yfinance``."""
    if name == "sample":
        from stockflow.sources.sample import SampleSource

        return SampleSource()
    if name == "files":
        from stockflow.sources.files import FilesSource

        where = path or settings.data.path
        if not where:
            raise ConfigError("the files source needs a path: --path PATH or settings data.path")
        return FilesSource(where, max_bytes=int(settings.data.max_file_mb * 1024 * 1024))
    if name == "alpaca":
        from stockflow.sources.alpaca import AlpacaSource

        return AlpacaSource(settings, raw_dir=raw_dir)
    if name == "yfinance":
        from stockflow.sources.yahoo import YFinanceSource

        return YFinanceSource(
            raw_dir=raw_dir,
            session=session,
            cache_dir=settings.data_dir / "yfinance",
            timeout_s=settings.data.http_timeout_s,
        )
    raise ConfigError(f"unknown data source {name!r}; choose one of {', '.join(SOURCE_NAMES)}")


__all__ = ["SOURCE_NAMES", "DataSource", "FetchResult", "Reject", "get_source"]
