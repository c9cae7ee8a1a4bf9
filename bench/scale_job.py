"""One measurement of the scale benchmark, in its own process (so each peak memory is its own):
``python -m bench.scale_job STAGE MODE N OUT.json`` with STAGE features | features_store | retrain |
backtest and MODE inproc | dask (a LocalCluster of 2 single-threaded worker processes, the machine's cores).

- ``features``: the feature frame returned to this process (chunks' frames gathered on Dask);
- ``features_store``: the features stored: in process built whole and written to the feature store's
  parquet file (what ``stockflow features`` does); on Dask each worker writes its chunks to the chunked
  store and nothing comes back;
- ``retrain``: features, walk-forward (LightGBM, 4 folds) and the final fit, as the retrain flow runs
  them: in process the frame in memory; on Dask the features in the chunked store, each (kind, fold) unit
  and each final fit reading its sessions on its worker.

Peak memory per process: the driver's own ``ru_maxrss``, each worker's ``ru_maxrss`` (asked of the
workers at the end) and, sampled every 0.2 s with psutil, the largest RSS any worker process reached (a
worker restarted for memory keeps its figure there).

Universes larger than the shared file's 488 symbols are SYNTHETIC: symbols resampled with replacement,
each copy's prices scaled by a random factor and perturbed by a small multiplicative noise per session
(the same for O, H, L and C, so bars stay consistent). Made once per size under .bench/scale/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_cc0"
SHARED = DATA / "sp500_2018_members_1962-2017_daily.csv.gz"
CACHE = Path(".bench") / "scale"
#: About 4.5 years of sessions: enough for the warm-up (260), a 500-session training window and 4 folds of
#: 63 sessions; the same window at every size, so only the number of symbols grows.
START, END = dt.date(2013, 6, 1), dt.date(2017, 12, 31)
BACKTEST_START = dt.date(2015, 1, 1)
MODELS = {
    "kinds": ["lightgbm"],
    "train_window_days": 500,
    "test_window_days": 63,
    "n_folds": 4,
    "val_days": 100,
    "lgbm_num_boost_round": 100,
}


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _workers_cpu_s(client: Any) -> float:
    """CPU seconds spent so far by all the workers (a load-independent measure of the work done)."""
    return float(sum(client.run(_cpu_s).values()))


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def universe(n: int) -> pl.DataFrame:
    """``n`` symbols of bars over START..END (synthetic copies beyond the file's symbols)."""
    path = CACHE / f"bars_{n}.parquet"
    if path.exists():
        return pl.read_parquet(path)
    base = (
        pl.scan_csv(SHARED, try_parse_dates=True)
        .rename({"date": "session"})
        .filter((pl.col("session") >= START) & (pl.col("session") <= END))
        .select(
            pl.col("symbol").cast(pl.Utf8),
            pl.col("session").cast(pl.Date),
            *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
        )
        .collect()
    )
    syms = sorted(base.get_column("symbol").unique().to_list())
    rng = np.random.default_rng(n)
    if n <= len(syms):
        out = base.filter(pl.col("symbol").is_in(syms[:n]))
    else:
        picks = rng.choice(len(syms), size=n, replace=True)
        parts = []
        for k, i in enumerate(picks):
            one = base.filter(pl.col("symbol") == syms[i])
            noise = np.exp(rng.normal(0, 0.002, one.height)) * rng.uniform(0.5, 2.0)
            f = pl.Series(noise)
            parts.append(
                one.with_columns(
                    pl.lit(f"S{k:05d}_{syms[i]}").alias("symbol"),
                    *[(pl.col(c) * f).alias(c) for c in ("open", "high", "low", "close")],
                )
            )
        out = pl.concat(parts)
    out = out.sort("symbol", "session")
    CACHE.mkdir(parents=True, exist_ok=True)
    out.write_parquet(path)
    return out


def _cluster() -> Any:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit="6GB"
    )
    return cluster, Client(cluster)


def _warm() -> None:
    """Imports and the backtest kernel's first call (numba cache load): paid once per process, in the
    driver of an in-process job and on each worker of a cluster, never timed."""
    import lightgbm  # noqa: F401
    import talib  # noqa: F401

    import stockflow.compute.backtest  # the strategies and TA-Lib: ~10 s of imports on a loaded machine
    import stockflow.compute.features
    import stockflow.compute.walkforward  # noqa: F401
    from stockflow.backtest.config import BacktestConfig
    from stockflow.backtest.engine import simulate
    from stockflow.backtest.panel import Panel, SignalPanel

    one = np.ones((3, 1))
    panel = Panel(np.arange(3).astype("datetime64[D]"), ("A",), one, one, one, one, one > 0)
    simulate(panel, SignalPanel(one.astype(np.int8), one, one, one > 0), BacktestConfig())
    from stockflow.logs import get_logger

    get_logger()  # imports Prefect (the stages log through it; a flow's process has it loaded)


class WorkerSampler:
    """Peak RSS (MB) of every process below this one (the cluster's nannies and workers), sampled."""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        import psutil

        self.me = psutil.Process()
        self.peaks: dict[int, float] = {}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.every):
            for p in self.me.children(recursive=True):
                try:
                    mb = p.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), mb)

    def stop(self) -> list[float]:
        """Stop; the peaks of the processes seen (largest first, MB)."""
        self._stop.set()
        self._thread.join()
        return sorted((round(v, 1) for v in self.peaks.values()), reverse=True)


def _worker_peaks(client: Any) -> list[float]:
    def peak() -> float:
        import resource as r

        return round(r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024, 1)

    return sorted(client.run(peak).values())


def _parts_dir() -> Path:
    return (CACHE / "parts" / f"{os.getpid()}").resolve()


def _features_store(settings: Any, bars: pl.DataFrame, client: Any) -> dict[str, Any]:
    from stockflow.compute.features import build_features_to_store
    from stockflow.features import build_features_report
    from stockflow.features.parquet import discard_chunks, save_features

    if client is None:
        res = build_features_report(bars, settings.features)
        path = save_features(res, settings.model_copy(update={"data_dir": _parts_dir()}))
        rows = res.frame.height
        del res
        import shutil

        shutil.rmtree(_parts_dir(), ignore_errors=True)
        return {"feature_rows": rows, "written": str(path.name)}
    stored = build_features_to_store(bars, settings.features, _parts_dir(), chunk_symbols=64, client=client)
    discard_chunks(stored.store)
    return {"feature_rows": stored.rows, "written": f"{len(stored.store.files)} chunk files"}


def job(stage: str, mode: str, n: int) -> dict[str, Any]:
    """Run one measurement; returns its figures."""
    from stockflow.config import load_settings

    settings = load_settings(models=MODELS)
    bars = universe(n)
    out: dict[str, Any] = {"stage": stage, "mode": mode, "symbols": n, "bar_rows": bars.height}
    client = None
    sampler = None
    if mode == "dask":
        t = time.perf_counter()
        sampler = WorkerSampler()
        cluster, client = _cluster()
        client.wait_for_workers(2)
        client.run(_warm)  # a standing cluster has its imports done; a job should not time them
        out["cluster_start_and_imports_s"] = round(time.perf_counter() - t, 2)
    # Imports (TA-Lib, LightGBM, Prefect) and the kernel's first call in this process too, in both modes, as
    # the cluster's workers had theirs: the timed part is the work and what distributing it costs.
    _warm()
    cpu0 = _cpu_s()
    wcpu0 = _workers_cpu_s(client) if client is not None else 0.0
    t0 = time.perf_counter()
    if stage == "features":
        from stockflow.compute.features import build_features_report

        res = build_features_report(bars, settings.features, client=client, chunk_symbols=64)
        out["feature_rows"] = res.frame.height
    elif stage == "features_store":
        out.update(_features_store(settings, bars, client))
    elif stage == "retrain":
        from models.factory import effective_params, params_from_settings
        from stockflow.compute.executor import DaskExecutor
        from stockflow.compute.features import build_features_report, build_features_to_store
        from stockflow.compute.walkforward import UnitRunner
        from stockflow.evaluation import folds
        from stockflow.features.parquet import discard_chunks
        from stockflow.ml.retrain import PreparedData, evaluate_walk_forward, serial_runner, train_config
        from stockflow.ml.retrain_data import final_here
        from stockflow.ml.training import Recipe, usable_rows

        ms = settings.models
        store = None
        if client is None:
            frame = build_features_report(bars, settings.features).frame
            sessions = usable_rows(frame).get_column("session").unique().to_list()
        else:
            frame = None
            store = build_features_to_store(
                bars, settings.features, _parts_dir(), chunk_symbols=64, client=client
            ).store
            sessions = store.usable_sessions()
        del bars
        out["features_s"] = round(time.perf_counter() - t0, 2)
        fs = folds(sessions, ms.train_window_days, ms.test_window_days, ms.purge_days, ms.n_folds)
        data = PreparedData(frame, [], {}, fs, store)
        recipes = {
            "lightgbm": Recipe("lightgbm", effective_params("lightgbm", params_from_settings("lightgbm", ms)))
        }
        unit_runner = UnitRunner(DaskExecutor(client=client)) if client is not None else None
        runner = unit_runner or serial_runner
        cfg = train_config(settings)
        t1 = time.perf_counter()
        preds, metrics, _ = evaluate_walk_forward(data, recipes, cfg, None, runner)
        out["walk_forward_s"] = round(time.perf_counter() - t1, 2)
        t2 = time.perf_counter()
        final = (unit_runner.final if unit_runner else final_here)(
            data.source, recipes, cfg, ms.train_window_days
        )
        out["final_fit_s"] = round(time.perf_counter() - t2, 2)
        out["final_reference_rows"] = final.references["lightgbm"].height
        out["folds"] = len(fs)
        out["prediction_rows"] = preds.height
        out["auc_lightgbm"] = metrics["lightgbm"].get("roc_auc")
        discard_chunks(store)
    elif stage == "backtest":
        from stockflow.backtest.runner import run_comparison
        from stockflow.compute.backtest import parallel_comparison
        from stockflow.compute.executor import DaskExecutor

        # Signals and backtests of the 5 strategies, costs on and off: the flow's compare-strategies.
        names = ["sma_crossover", "rsi_reversion", "macd_trend", "bollinger_zscore", "ensemble"]
        fn = parallel_comparison(DaskExecutor(client=client)) if client is not None else run_comparison
        comp = fn(bars, settings, strategies=names, start=BACKTEST_START, end=END)
        out["final_equity"] = {k: round(v["on"].metrics["final_equity"], 6) for k, v in comp.results.items()}
    else:
        raise SystemExit(f"unknown stage {stage}")
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    out["cpu_s_driver"] = round(_cpu_s() - cpu0, 2)
    out["cpu_s_workers"] = round(_workers_cpu_s(client) - wcpu0, 2) if client is not None else 0.0
    out["cpu_s_total"] = round(out["cpu_s_driver"] + out["cpu_s_workers"], 2)
    out["loadavg_1m_end"] = os.getloadavg()[0]
    out["peak_rss_mb_driver"] = _rss_mb()
    if client is not None and sampler is not None:
        out["peak_rss_mb_workers"] = _worker_peaks(client)
        out["workers_alive_at_end"] = len(client.scheduler_info().get("workers", {}))
        client.close()
        cluster.close()
        out["peak_rss_mb_sampled_children"] = sampler.stop()[:4]
    out["peak_rss_mb_max_process"] = max(
        [
            out["peak_rss_mb_driver"],
            *out.get("peak_rss_mb_workers", []),
            *out.get("peak_rss_mb_sampled_children", []),
        ]
    )
    return out


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    stage, mode, n, dest = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    dest.write_text(json.dumps(job(stage, mode, n), default=str))
