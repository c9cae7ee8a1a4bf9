"""Machine learning: walk-forward training, retraining and promotion, the model registry, prediction, drift.

One module per stage, in the order a model lives:

- ``training``: walk-forward folds of one model kind over the feature panel, fold metrics, final fit;
- ``retrain`` (+ ``retrain_records``): a retrain run over every kind, the decision and what it records;
- ``promotion``: the gates a challenger must pass (shuffled control, baselines, champion, margin);
- ``registry``: model versions and the one champion, in the state store;
- ``predict``: the champion's scores for the last session, stored idempotently;
- ``drift``: Evidently reports on features and predictions, and the retrain request they raise.

The model kinds themselves live in the top-level ``models`` package; evaluation statistics in
``stockflow.evaluation``.
"""
