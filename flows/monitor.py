"""The ``monitor`` flow (deployable; daily after the trade run): Evidently drift of recent features and
the champion's predictions against its training reference. Saves the HTML report under
``reports_dir/drift/``, stores drift share and per-column scores, publishes a link and a table artifact,
and above ``settings.drift.drift_share_threshold`` starts the ``retrain`` deployment (or records the
request when there is none) and raises the drift flag the risk stage reads.

Without a champion there is nothing to compare: the run ends ``Cancelled`` (grey, not a green success
badge) in state ``NoModel`` and
says so.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import Cancelled, State

import flows  # noqa: F401  (one line for expected errors, also when Prefect loads this file by path)
from stockflow.config import load_settings
from stockflow.db import get_engine, upgrade
from stockflow.ml.registry import NoChampionError
from tasks.ml import drift_summary, monitor_drift, publish_drift_artifacts


@flow(name="monitor", retries=0, validate_parameters=True)
def monitor_flow(symbols: list[str] | None = None) -> dict[str, Any] | State:
    """Check drift for ``symbols`` (default: the configured universe, else the champion's)."""
    settings = load_settings()
    engine = get_engine(settings.db_url)
    upgrade(engine)
    try:
        result = monitor_drift(settings, engine, symbols)
    except NoChampionError as err:
        # Not a green "Completed" badge in the UI: nothing was checked (issue 11). Cancelled is grey.
        return Cancelled(name="NoModel", message=str(err), data={"drift": None, "reason": str(err)})
    publish_drift_artifacts(result)
    return drift_summary(result)
