"""The versioned feature sets this code computes, by version: columns, warm-up, indicator function.

``ta-v1`` is the TA-Lib set of :mod:`stockflow.features.spec` (with cross-sectional ranks);
``a158-v1`` the Alpha158-style set of :mod:`stockflow.features.alpha158`. ``features.feature_set_version``
chooses one; models record the version they were trained on and refuse other versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from stockflow.errors import ConfigError
from stockflow.features import alpha158, spec
from stockflow.features.indicators import symbol_features

Compute = Callable[..., np.ndarray]

#: Past returns close[t]/close[t-k]-1 every feature frame carries (baselines: yesterday, reversal,
#: momentum), as features (ta-v1) or as extra columns beside them.
SIGNAL_COLUMNS: Final[tuple[str, ...]] = ("ret_1", "ret_5", "ret_20")


@dataclass(frozen=True)
class FeatureSet:
    """One versioned feature set."""

    version: str
    spec: Mapping[str, str]
    base: tuple[str, ...]
    ranked: tuple[str, ...]
    min_history: int
    compute: Compute

    @property
    def signals(self) -> tuple[str, ...]:
        """Past-return columns the rule baselines read (``ret_1``, ``ret_5``, ``ret_20``) that the set does
        not compute as features: :func:`~stockflow.features.build_features` adds them beside it."""
        return tuple(c for c in SIGNAL_COLUMNS if c not in self.base)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every feature column, in output order (per-symbol features, then cross-sectional ranks)."""
        return self.base + tuple(f"{spec.RANK_PREFIX}{f}" for f in self.ranked)

    def fingerprint(self) -> str:
        """A short hash of the definitions (pinned per version in the tests)."""
        if self.version == spec.FEATURE_SET_VERSION:
            return spec.spec_fingerprint()
        payload = json.dumps(
            {"spec": dict(self.spec), "ranked": self.ranked, "min_history": self.min_history}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


FEATURE_SETS: Final[dict[str, FeatureSet]] = {
    spec.FEATURE_SET_VERSION: FeatureSet(
        spec.FEATURE_SET_VERSION, spec.FEATURE_SPEC, spec.BASE_FEATURES, spec.RANKED_FEATURES,
        spec.MIN_HISTORY, symbol_features,
    ),
    alpha158.VERSION: FeatureSet(
        alpha158.VERSION, alpha158.SPEC, alpha158.BASE, (), alpha158.MIN_HISTORY, alpha158.alpha158_features
    ),
}  # fmt: skip


def feature_set(version: str) -> FeatureSet:
    """The feature set of ``version``; :class:`ConfigError` naming the known versions otherwise."""
    try:
        return FEATURE_SETS[version]
    except KeyError:
        raise ConfigError(
            f"features.feature_set_version is {version!r} but this code computes "
            f"{', '.join(repr(v) for v in FEATURE_SETS)}; retrain models on one of them or install the "
            "matching code"
        ) from None
