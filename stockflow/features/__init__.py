"""Features of stockflow: TA-Lib indicators over polars bars, labels, leakage guards, parquet store.

Public API (contract in docs/design.md)::

    build_features(bars, settings) -> pl.DataFrame
        # symbol, session, FEATURE_COLUMNS, warmup, fwd_ret, y_up
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
    required_history,
)
from stockflow.features.spec import (
    BASE_FEATURES,
    FEATURE_COLUMNS,
    FEATURE_SET_VERSION,
    LABEL_COLUMNS,
    MIN_HISTORY,
    RANK_FEATURES,
    spec_fingerprint,
)
from stockflow.features.store import feature_dir, load_features, save_features

__all__ = [
    "BASE_FEATURES",
    "FEATURE_COLUMNS",
    "FEATURE_SET_VERSION",
    "LABEL_COLUMNS",
    "MIN_HISTORY",
    "OUTPUT_COLUMNS",
    "RANK_FEATURES",
    "FeatureResult",
    "build_features",
    "build_features_report",
    "check_version",
    "empty_features",
    "feature_dir",
    "load_features",
    "required_history",
    "save_features",
    "spec_fingerprint",
]
