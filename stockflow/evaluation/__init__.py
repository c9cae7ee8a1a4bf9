"""Honest evaluation: walk-forward folds with a purge gap, metrics, cross-sectional IC, baselines.

Public API::

    folds(sessions, train_days, test_days, purge_days, n_folds, expanding=True, *, label_horizon=1)
        -> list[Fold]
    split(frame, fold, label_horizon) -> (train, test)
    evaluate(y, p, fwd_ret, sessions, symbols, *, label_horizon=1) -> dict
    compare_with_baselines(frame, folds, models, ...) -> Comparison(table, predictions, folds, metrics)
"""

from stockflow.evaluation.baselines import (
    Classifier,
    Comparison,
    ModelFactory,
    add_cross_sectional_label,
    always_up,
    compare_with_baselines,
    comparison_table,
    default_baselines,
    fit_predict,
    model_metrics,
    momentum,
    reversal,
    walk_forward_predictions,
    yesterday_direction,
)
from stockflow.evaluation.metrics import (
    classification_metrics,
    daily_ic,
    evaluate,
    hit_rate_by_confidence,
    information_coefficient,
)
from stockflow.evaluation.walkforward import Fold, folds, split

__all__ = [
    "Classifier",
    "Comparison",
    "Fold",
    "ModelFactory",
    "add_cross_sectional_label",
    "always_up",
    "classification_metrics",
    "compare_with_baselines",
    "comparison_table",
    "daily_ic",
    "default_baselines",
    "evaluate",
    "fit_predict",
    "folds",
    "hit_rate_by_confidence",
    "information_coefficient",
    "model_metrics",
    "momentum",
    "reversal",
    "split",
    "walk_forward_predictions",
    "yesterday_direction",
]
