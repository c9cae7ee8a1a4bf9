"""The one compute setting: defaults to today's in-process path, refuses a malformed address by name,
sizes a local cluster to the machine, and says in one line when no scheduler answers."""

from __future__ import annotations

import os
import socket

import pytest

from stockflow.compute.executor import InlineExecutor, local_cluster_kwargs, open_executor
from stockflow.config import load_settings
from stockflow.errors import ConfigError


def test_unset_means_in_process() -> None:
    settings = load_settings()
    assert settings.compute.dask_address is None
    with open_executor(settings) as ex:
        assert isinstance(ex, InlineExecutor) and not ex.distributed
        assert ex.submit(lambda x: x + 1, {"x": 1}).result() == 2


@pytest.mark.parametrize("bad", ["lokal", "127.0.0.1:8786", "tcp//host:8786"])
def test_a_malformed_address_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"compute\.dask_address .* neither 'local' nor"):
        load_settings(compute={"dask_address": bad})
    with pytest.raises(ConfigError, match=r"unknown key 'compute\.dask_adress'"):
        load_settings(compute={"dask_adress": "local"})


def test_local_is_one_single_threaded_process_per_core() -> None:
    kw = local_cluster_kwargs(load_settings(compute={"dask_address": "local"}).compute)
    assert kw["n_workers"] == (os.cpu_count() or 1) and kw["threads_per_worker"] == 1 and kw["processes"]
    assert local_cluster_kwargs(load_settings(compute={"local_workers": 3}).compute)["n_workers"] == 3


def test_no_scheduler_at_the_address_is_one_clear_error() -> None:
    import dask

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(compute={"dask_address": f"tcp://127.0.0.1:{port}"})
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(ConfigError, match=r"compute\.dask_address .*: no Dask scheduler answers"),
        open_executor(settings),
    ):
        pass
