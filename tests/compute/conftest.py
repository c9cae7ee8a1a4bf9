"""Fixtures of the scale-out tests: one real Dask LocalCluster of two single-threaded worker processes
for the whole session (starting one costs seconds), tiny data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from tests.models.conftest import SYMBOLS
from tests.models.synth import synthetic_bars


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A LocalCluster of 2 worker processes (no dashboard)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="2GB"
    ) as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    """A client of the session's cluster (closed after the test, so no default client leaks)."""
    from distributed import Client

    with Client(dask_cluster) as client:
        yield client


@pytest.fixture(scope="session")
def reversal_bars() -> pl.DataFrame:
    """The models tests' learnable panel (3 symbols, 900 sessions)."""
    return synthetic_bars(SYMBOLS, 900, reversal=0.3, seed=0)


@pytest.fixture(scope="session")
def in_process(
    prefect_api: None, tmp_path_factory: pytest.TempPathFactory, reversal_bars: pl.DataFrame
) -> Any:
    """The reference: the retrain flow in process (summary, stored metrics, registry rows)."""
    from tests.compute.test_flows import retrain_in

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("inproc")
    try:
        mp.chdir(root)
        return retrain_in(mp, root, reversal_bars, None)
    finally:
        mp.undo()
