"""The ``retrain`` flow (deployable; on demand and on a schedule): train challengers, compare them
walk-forward with the champion and the baselines on the same folds, register them, promote only when the
rule says so (see :mod:`stockflow.ml.promotion`), and publish the metrics table and the model card.

Parameters (all optional, validated): ``symbols`` (default the configured universe), ``start``/``end``
(window of bars, default all stored), ``kinds`` (default ``settings.models.kinds``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

import flows  # noqa: F401  (one line for expected errors, also when Prefect loads this file by path)
from stockflow.choices import ModelKind
from stockflow.compute.executor import open_executor
from stockflow.config import load_settings
from stockflow.db import get_engine, upgrade
from stockflow.features.parquet import discard_chunks
from stockflow.ml.retrain import fail_run, resolve_kinds, start_run
from tasks.compute import final_runner, fold_runner
from tasks.ml import (
    evaluate_challengers,
    prepare_training_data,
    publish_retrain_artifacts,
    retrain_summary,
    train_register_promote,
)


@flow(name="retrain", retries=0, validate_parameters=True)
def retrain_flow(
    symbols: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    kinds: list[ModelKind] | None = None,
) -> dict[str, Any]:
    """Retrain and maybe promote (see the module docstring); returns a summary with the decision's reason."""
    settings = load_settings()
    engine = get_engine(settings.db_url)
    upgrade(engine)
    chosen = resolve_kinds(settings, kinds)
    params = {"symbols": symbols or [], "start": start, "end": end, "kinds": chosen}
    run_id = start_run(engine, params, str(flow_run.get_id() or "") or None)
    try:
        # compute.dask_address: features written in chunks to the feature store by the workers, one task
        # per (kind, fold) and one final fit per kind on Dask; unset: all here, the frame in memory.
        with open_executor(settings) as executor:
            data = prepare_training_data(settings, engine, symbols, start, end, to_store=executor.distributed)
            try:
                evaluation = evaluate_challengers(settings, engine, data, chosen, fold_runner(executor))
                report = train_register_promote(
                    settings, engine, data, evaluation, run_id, final_runner=final_runner(executor)
                )
            finally:
                discard_chunks(data.store)
    except BaseException as err:
        fail_run(engine, run_id, err)
        raise
    publish_retrain_artifacts(report)
    return retrain_summary(report)
