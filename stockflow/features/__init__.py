"""Features of stockflow: TA-Lib indicators over polars bars, labels, leakage guards, parquet files.

Public API (contract in docs/design.md)::

    build_features(bars, settings) -> pl.DataFrame
        # symbol, session, feature_set(version).columns, warmup, LABEL_COLUMNS
        # (fwd_ret, y_up, fwd_ret_1, fwd_excess, fwd_rank, y_out)
    feature_set(version) -> FeatureSet  # "ta-v1" (TA-Lib) or "a158-v1" (Alpha158-style)
    build_features_report(bars, settings) -> FeatureResult  # + skipped symbols with reasons
    FEATURE_COLUMNS, FEATURE_SET_VERSION, MIN_HISTORY, required_history(settings)
    save_features(result, settings) -> Path; load_features(settings, version=None) -> pl.DataFrame

Also: ``stockflow.features.run.compute_and_store`` (the whole stage, used by ``tasks.features`` and the
CLI) and ``stockflow.features.leakage`` (truncation-invariance and warm-up-stability checks).
"""

from stockflow.features.build import (
    OUTPUT_COLUMNS,
    FeatureResult,
    build_features,
    build_features_report,
    check_version,
    empty_features,
    output_columns,
    required_history,
    with_cross_sectional_labels,
)
from stockflow.features.parquet import feature_dir, load_features, save_features
from stockflow.features.sets import FEATURE_SETS, FeatureSet, feature_set
from stockflow.features.spec import (
    BASE_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_SET_VERSION,
    LABEL_COLUMNS,
    MIN_HISTORY,
    RANK_FEATURES,
    spec_fingerprint,
)

__all__ = [
    "BASE_FEATURES",
    "FEATURE_COLUMNS",
    "FEATURE_SETS",
    "FEATURE_SET_VERSION",
    "LABEL_COLUMNS",
    "MIN_HISTORY",
    "OUTPUT_COLUMNS",
    "RANK_FEATURES",
    "FeatureResult",
    "FeatureSet",
    "build_features",
    "build_features_report",
    "check_version",
    "empty_features",
    "feature_dir",
    "feature_set",
    "load_features",
    "output_columns",
    "required_history",
    "save_features",
    "spec_fingerprint",
    "with_cross_sectional_labels",
]
