"""Scale-out plumbing: Dask under Prefect (``prefect-dask``), chosen by the one setting
``compute.dask_address`` (unset: everything in this process, as before).

- :mod:`.executor`: open an executor for a flow run (in-process, a ``LocalCluster``, or an existing
  scheduler) that submits Prefect tasks to a ``DaskTaskRunner``;
- :mod:`.walkforward`: the walk-forward split into one unit per (model kind, fold) and the merge back
  into the in-process order, so results are identical; the final fits as one unit per kind;
- :mod:`.features`: per-chunk TA-Lib work as Dask futures inside one task (``get_dask_client``), the
  frame gathered or each chunk written by its worker to the chunked feature store;
- :mod:`.backtest`: one unit per strategy (costs on and off).

Workers get arrays, frames and file paths (the chunked feature store under ``data_dir``), never database
handles or settings files: only the flow's own process reads and writes the state store.
"""
