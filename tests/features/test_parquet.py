"""features.parquet: one parquet file per feature-set version, version recorded; mismatches refused."""

from __future__ import annotations

import json

import polars as pl
import pytest

from stockflow.config import Settings, load_settings
from stockflow.errors import DataError
from stockflow.features import (
    FEATURE_SET_VERSION,
    build_features_report,
    feature_dir,
    load_features,
    save_features,
)


def test_round_trip_with_version_and_skips(settings: Settings, panel: pl.DataFrame) -> None:
    bars = pl.concat(
        [panel, panel.filter(pl.col("symbol") == "IBM").head(50).with_columns(pl.lit("TINY").alias("symbol"))]
    )
    res = build_features_report(bars, settings.features)
    path = save_features(res, settings)
    assert path.parent == settings.data_dir / "features" / FEATURE_SET_VERSION
    back = load_features(settings)
    assert back.equals(res.frame)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["feature_set_version"] == FEATURE_SET_VERSION
    assert "TINY" in manifest["skipped"]
    some = load_features(settings, symbols=["AAPL"], start=back["session"][3000])
    assert some["symbol"].unique().to_list() == ["AAPL"] and some["session"].min() >= back["session"][3000]


def test_missing_or_mismatched_store_is_refused(settings: Settings, aapl: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="stockflow features"):
        load_features(settings)
    save_features(build_features_report(aapl, settings.features), settings)
    other = load_settings(data_dir=settings.data_dir, features={"label_horizon": 3})
    with pytest.raises(DataError, match="label horizon"):
        load_features(other)
    # A file put under another version's directory is refused by its recorded version.
    wrong = feature_dir(settings, "ta-v0")
    wrong.mkdir(parents=True)
    (feature_dir(settings) / "features.parquet").rename(wrong / "features.parquet")
    with pytest.raises(DataError, match="holds version 'ta-v1'"):
        load_features(settings, "ta-v0")
