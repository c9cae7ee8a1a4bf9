"""Feature store: one parquet file per feature-set version under ``data_dir/features/<version>/``.

The version, label horizon and spec fingerprint are written into the parquet metadata and a
``manifest.json`` beside it; reading checks them, so a frame built by other code or another label
horizon is refused instead of silently mixed in.

The chunked store (:class:`ChunkStore`, below) is a retrain's working set on a Dask cluster: one file per
chunk of symbols, written by the workers, read per fold by the units.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow.parquet as pq

from stockflow.db.base import utcnow
from stockflow.errors import DataError
from stockflow.features.build import FeatureResult, _with_ranks, output_columns, with_cross_sectional_labels
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


# --- Chunked store: the working set of a run on a cluster ------------------------------------------------
#
# On a Dask cluster the features of a run are written by the workers, one parquet file per chunk of whole
# symbols (``part-00000.parquet``, ...), under ``data_dir/features/<version>/parts/<run>/`` on the shared
# filesystem: the flow's own process never holds the whole frame. The files carry the per-symbol columns
# only; the cross-sectional labels and ranks need every symbol of a session, so a reader adds them to the
# whole sessions it reads (:meth:`ChunkStore.read`): the same values as the in-memory frame, session by
# session, since they depend on nothing else.

PARTS = "parts"


def chunk_dir(settings: Settings, version: str, run: str) -> Path:
    """Directory of one run's chunk files (``data_dir`` must be on a filesystem the workers share)."""
    return feature_dir(settings, version) / PARTS / run


def write_chunk(directory: str | Path, index: int, frame: pl.DataFrame) -> Path:
    """Write one chunk's per-symbol frame as ``part-<index>.parquet`` (atomically: a worker lost mid-write
    leaves no partial part; its retry writes the same file)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"part-{index:05d}.parquet"
    tmp = out / f".{path.name}.{os.getpid()}.{id(frame)}.tmp"
    frame.write_parquet(tmp, compression="zstd", row_group_size=64 * 1024)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class ChunkStore:
    """A reference to one run's chunk files (paths and small values only: what a worker receives)."""

    directory: str
    version: str
    files: tuple[str, ...]  # part file names, in symbol order

    def _scan(self) -> pl.LazyFrame:
        if not self.files:
            raise DataError("no symbol could be featurized", location=self.directory, rule="feature_store")
        return pl.scan_parquet([str(Path(self.directory) / f) for f in self.files])

    def sessions(self) -> pl.Series:
        """Every session of the stored rows, sorted (warm-up rows included)."""
        return self._scan().select(pl.col("session").unique().sort()).collect().get_column("session")

    def usable_sessions(self) -> list[dt.date]:
        """Sessions with at least one row outside the warm-up (what the folds are cut from)."""
        lf = self._scan().filter(~pl.col("warmup")).select(pl.col("session").unique().sort())
        return lf.collect().get_column("session").to_list()

    def labelled_sessions(self) -> list[dt.date]:
        """Sessions with a labelled row outside the warm-up (``y_out`` is defined exactly there)."""
        lf = self._scan().filter(~pl.col("warmup") & pl.col("fwd_ret").is_not_null())
        return lf.select(pl.col("session").unique().sort()).collect().get_column("session").to_list()

    def height(self) -> int:
        """Rows stored."""
        return int(self._scan().select(pl.len()).collect().item())

    def read(self, first: dt.date | None = None, last: dt.date | None = None) -> pl.DataFrame:
        """The feature frame's rows of the sessions ``first``..``last`` (all when None), exactly as the
        in-memory build has them: same columns, same order (symbol, session), cross-sectional labels and
        ranks over the whole sessions read. Lazy scan: only those sessions' rows are materialized."""
        lf = self._scan()
        if first is not None:
            lf = lf.filter(pl.col("session") >= first)
        if last is not None:
            lf = lf.filter(pl.col("session") <= last)
        frame = with_cross_sectional_labels(lf.collect())
        return _with_ranks(frame, feature_set(self.version).ranked).select(output_columns(self.version))


@dataclass(frozen=True)
class StoredSlice:
    """The rows of sessions ``first``..``last`` of a chunked store, read where it is loaded (a worker)."""

    store: ChunkStore
    first: dt.date
    last: dt.date

    def load(self) -> pl.DataFrame:
        """The rows, as :meth:`ChunkStore.read` gives them."""
        return self.store.read(self.first, self.last)


def discard_chunks(store: ChunkStore | None) -> None:
    """Remove a run's chunk files (after the run: they are its working set, not the published store)."""
    import shutil

    if store is not None:
        shutil.rmtree(store.directory, ignore_errors=True)
