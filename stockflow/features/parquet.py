"""Feature store: one parquet file per feature-set version under ``data_dir/features/<version>/``.

The version, label horizon and spec fingerprint are written into the parquet metadata and a
``manifest.json`` beside it; reading checks them, so a frame built by other code or another label
horizon is refused instead of silently mixed in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow.parquet as pq

from stockflow.db.base import utcnow
from stockflow.errors import DataError
from stockflow.features.build import FeatureResult, output_columns
from stockflow.features.sets import feature_set
from stockflow.features.spec import FEATURE_SET_VERSION

if TYPE_CHECKING:
    from stockflow.config import Settings

FILE_NAME = "features.parquet"
MANIFEST = "manifest.json"
_META_KEY = b"stockflow.features"


def feature_dir(settings: Settings, version: str = FEATURE_SET_VERSION) -> Path:
    """Directory of one feature-set version."""
    return Path(settings.data_dir) / "features" / version


def save_features(result: FeatureResult, settings: Settings) -> Path:
    """Write the result's frame (replacing the previous one atomically) and its manifest; return the path."""
    out_dir = feature_dir(settings, result.feature_set_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = result.frame
    meta: dict[str, Any] = {
        "feature_set_version": result.feature_set_version,
        "spec_fingerprint": feature_set(result.feature_set_version).fingerprint(),
        "label_horizon": result.label_horizon,
        "rows": frame.height,
        "symbols": result.symbols,
        "skipped": result.skipped,
        "first_session": str(frame["session"].min()) if frame.height else None,
        "last_session": str(frame["session"].max()) if frame.height else None,
        "created_at": utcnow().isoformat(),
    }
    table = frame.to_arrow()
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
    )
    path = out_dir / FILE_NAME
    tmp = out_dir / f".{FILE_NAME}.{os.getpid()}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    (out_dir / MANIFEST).write_text(json.dumps(meta, indent=2))
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """The metadata written with a feature file."""
    raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
    if raw is None:
        raise DataError("feature file has no stockflow metadata", location=str(path), rule="feature_store")
    meta: dict[str, Any] = json.loads(raw)
    return meta


def load_features(
    settings: Settings,
    version: str | None = None,
    *,
    symbols: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pl.DataFrame:
    """Stored features of ``version`` (default: the code's), optionally filtered.

    Raises :class:`DataError` when the file is missing, was written by a different feature set or spec,
    or with a label horizon other than ``settings.features.label_horizon``.
    """
    version = version or settings.features.feature_set_version
    path = feature_dir(settings, version) / FILE_NAME
    if not path.exists():
        raise DataError(
            f"no stored features for version {version!r}; run `stockflow features` first",
            location=str(path),
            rule="feature_store",
        )
    meta = read_manifest(path)
    if meta.get("feature_set_version") != version:
        raise DataError(
            f"feature file holds version {meta.get('feature_set_version')!r}, expected {version!r}",
            location=str(path),
            rule="feature_set_version",
        )
    if meta.get("spec_fingerprint") != feature_set(version).fingerprint():
        raise DataError(
            "feature file was built by different feature code under the same version; rebuild it",
            location=str(path),
            rule="feature_set_version",
        )
    if meta.get("label_horizon") != settings.features.label_horizon:
        raise DataError(
            f"feature file has label horizon {meta.get('label_horizon')}, settings ask for "
            f"{settings.features.label_horizon}; rebuild with `stockflow features`",
            location=str(path),
            rule="label_horizon",
        )
    lf = pl.scan_parquet(path)
    if symbols:
        lf = lf.filter(pl.col("symbol").is_in(list(symbols)))
    if start:
        lf = lf.filter(pl.col("session") >= start)
    if end:
        lf = lf.filter(pl.col("session") <= end)
    frame = lf.collect()
    cols = output_columns(version)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"feature file lacks columns {missing}", location=str(path), rule="schema")
    return frame.select(cols)
