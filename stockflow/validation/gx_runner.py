"""Running the bars suite as one GX Checkpoint over a whole batch, with Data Docs.

GX keeps its project (suite, validation definition, checkpoint, stored results) in a file-backed context
under ``data_dir/gx``; its Data Docs site is written to ``reports_dir/data_docs``. GX has no polars
datasource: it gets a pandas frame with only the columns the suite reads.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from stockflow.config import Settings
from stockflow.db.base import utcnow
from stockflow.logs import get_logger
from stockflow.validation.docs import data_docs_dir

SITE_NAME = "stockflow"
DATASOURCE = "stockflow"
ASSET = "bars"
BATCH_DEFINITION = "whole_batch"
VALIDATION_DEFINITION = "bars_batch"
CHECKPOINT = "ingest"
_LOCK = threading.Lock()  # one checkpoint at a time per process: the GX project files are shared


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, trimmed to what we store."""

    rule: str
    severity: str
    expectation: str
    column: str
    success: bool
    element_count: int
    unexpected_count: int
    unexpected_percent: float
    unexpected_index: tuple[int, ...]


@dataclass(frozen=True)
class CheckpointOutcome:
    """Every expectation's outcome and the Data Docs page of this run."""

    success: bool
    expectations: tuple[ExpectationOutcome, ...]
    data_docs_path: str | None


def gx_project_dir(settings: Settings) -> Path:
    """Where the GX file context lives (ignored by git with the rest of data/)."""
    return (settings.data_dir / "gx").resolve()


def _context(settings: Settings) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    root = gx_project_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    ctx: Any = gx.get_context(mode="file", project_root_dir=str(root))
    docs = str(data_docs_dir(settings).resolve()) + "/"
    sites = dict(ctx.get_config().data_docs_sites or {})
    changed = False
    if "local_site" in sites:
        ctx.delete_data_docs_site("local_site")
        changed = True
    current = sites.get(SITE_NAME, {}).get("store_backend", {}).get("base_directory")
    if current != docs:
        if SITE_NAME in sites:
            ctx.delete_data_docs_site(SITE_NAME)
        ctx.add_data_docs_site(
            SITE_NAME,
            {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        changed = True
    bars = ctx.variables.progress_bars  # a ProgressBarsConfig, or a dict once read back from the file
    shown = bars.get("globally", True) if isinstance(bars, dict) else getattr(bars, "globally", True)
    if bars is None or shown:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        changed = True
    if ctx.get_config().analytics_enabled is not False:
        ctx.config.analytics_enabled = False
        changed = True
    if changed:
        ctx.variables.save()
    return ctx


def _checkpoint(ctx: Any, suite: Any, *, docs: bool = True) -> Any:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    ds = ctx.data_sources.add_or_update_pandas(DATASOURCE)
    try:
        asset = ds.get_asset(ASSET)
    except LookupError:
        asset = ds.add_dataframe_asset(ASSET)
    try:
        batch_def = asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        batch_def = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
    suite = ctx.suites.add_or_update(suite)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=VALIDATION_DEFINITION, data=batch_def, suite=suite)
    )
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT,
            validation_definitions=[vd],
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[SITE_NAME])] if docs else [],
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 20},
        )
    )


def _docs_writable(settings: Settings) -> bool:
    """True when the Data Docs directory can be written; else a one-line warning (the ingest goes on:
    an unusable reports directory must not keep bars and the validation verdict from being stored)."""
    where = data_docs_dir(settings)
    try:
        where.mkdir(parents=True, exist_ok=True)
        probe = where / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError as err:
        get_logger().warning(
            f"warning: reports_dir is not usable ({err}); validation runs and bars are stored, but no Data "
            "Docs page is built. Fix reports_dir / STOCKFLOW_REPORTS_DIR"
        )
        return False


def _offline(settings: Settings) -> None:
    """Rewrite the freshly built site so it reads without network (GX pulls CSS/JS from CDNs)."""
    from stockflow.ops.datadocs import make_offline

    make_offline(data_docs_dir(settings))


def _file_path(url: str | None) -> str | None:
    if not url:
        return None
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else url


def run_checkpoint(
    settings: Settings, frame: pd.DataFrame, suite: Any, *, run_name: str
) -> CheckpointOutcome:
    """Validate ``frame`` (one batch, default RangeIndex) against ``suite`` in one checkpoint run."""
    from great_expectations.core.run_identifier import RunIdentifier

    docs_ok = _docs_writable(settings)
    urls: list[dict[str, Any]] = []
    with _LOCK:
        ctx = _context(settings)
        checkpoint = _checkpoint(ctx, suite, docs=docs_ok)
        result = checkpoint.run(
            batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_name, run_time=utcnow())
        )
        (identifier, suite_result), *_ = result.run_results.items()
        if docs_ok:
            try:
                urls = ctx.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE_NAME])
                _offline(settings)
            except Exception as err:  # reports are secondary: the verdict and the bars come first
                get_logger().warning(f"warning: Data Docs not finished in {data_docs_dir(settings)}: {err}")
                urls = []
    outcomes = []
    for r in suite_result.results:
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        column = kwargs.get("column") or ",".join(
            str(c)
            for c in (kwargs.get("column_list") or [kwargs.get("column_A"), kwargs.get("column_B")])
            if c
        )
        res = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"GX expectation {cfg.type} on {column} raised: {r.exception_info.get('exception_message')}"
            )
        outcomes.append(
            ExpectationOutcome(
                rule=str(cfg.meta.get("rule", cfg.type)),
                severity=str(cfg.meta.get("severity", "error")),
                expectation=cfg.type,
                column=column,
                success=bool(r.success),
                element_count=int(res.get("element_count") or 0),
                unexpected_count=int(res.get("unexpected_count") or 0),
                unexpected_percent=float(res.get("unexpected_percent") or 0.0),
                unexpected_index=tuple(int(i) for i in res.get("unexpected_index_list") or ()),
            )
        )
    page = _file_path(urls[0].get("site_url")) if urls else None
    return CheckpointOutcome(success=bool(result.success), expectations=tuple(outcomes), data_docs_path=page)
