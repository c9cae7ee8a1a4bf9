"""One unit of the retrain as a Dask worker runs it, in this process alone:
``python bench/unit_job.py N STORE_DIR OUT.json [walk|final]``: ``walk`` (default) is one walk-forward
unit (LightGBM + its shuffled control + the baselines, one fold), ``final`` the final fit of LightGBM
(the final window, the model and its drift reference).

The peak RSS of this process (``ru_maxrss``) is what one worker needs for the unit: the part of the
retrain on a cluster that decides whether a worker fits in its memory limit. The features are read from
a chunked store built by ``bench/bench_unit_memory.py`` (the synthetic universe of bench/scale_job.py);
the fold is the last of the 4 (all 4 read the same number of sessions).

Run as a script (not ``-m``) so ``PYTHONPATH`` can point the ``stockflow`` imports at another checkout
(the code before a change, measured side by side with the code after it).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _current_mb() -> float:
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def measure(n: int, store_dir: Path, preds: Path, unit: str = "walk") -> dict[str, object]:
    """Run the unit on the stored features of ``n`` symbols; its figures (``preds``: what it predicted)."""
    import lightgbm  # noqa: F401  (imports are not the unit's memory: a worker has them already)

    import stockflow
    from bench.scale_job import MODELS
    from models.factory import effective_params, params_from_settings
    from stockflow.compute.executor import InlineExecutor
    from stockflow.compute.walkforward import UnitRunner, UnitSpec, run_unit
    from stockflow.config import load_settings
    from stockflow.evaluation import folds
    from stockflow.features.parquet import ChunkStore, StoredSlice
    from stockflow.ml.retrain import train_config
    from stockflow.ml.training import Recipe, window_bounds

    settings = load_settings(models=MODELS)
    ms = settings.models
    files = tuple(sorted(p.name for p in store_dir.glob("part-*.parquet")))
    store = ChunkStore(str(store_dir), settings.features.feature_set_version, files)
    fs = folds(store.usable_sessions(), ms.train_window_days, ms.test_window_days, ms.purge_days, ms.n_folds)
    fold = fs[-1]
    recipes = {
        "lightgbm": Recipe("lightgbm", effective_params("lightgbm", params_from_settings("lightgbm", ms)))
    }
    cfg = train_config(settings)
    before_mb = _current_mb()
    t0 = time.perf_counter()
    if unit == "final":
        # As the retrain submits it (the final window's slice of the store), run here.
        fit = UnitRunner(InlineExecutor()).final(store, recipes, cfg, ms.train_window_days)
        out = fit.references["lightgbm"]
    else:
        out = run_unit(
            StoredSlice(store, *window_bounds(store.sessions(), fold.train_start, fold.test_end)),
            fold,
            recipes=recipes,
            cfg=cfg,
            aliases={},
            spec=UnitSpec(("lightgbm",), control=True, baselines=True),
        )
    t = round(time.perf_counter() - t0, 2)
    out.write_parquet(preds)
    return {
        "symbols": n,
        "unit": unit,
        "code": str(Path(stockflow.__file__).resolve().parents[1]),
        "fold": fold.index,
        "prediction_rows": out.height,
        "rss_mb_before_unit": before_mb,
        "peak_rss_mb": _rss_mb(),
        "unit_s": t,
        "loadavg_1m_end": os.getloadavg()[0],
    }


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    n, store_dir, dest = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    unit = sys.argv[4] if len(sys.argv) > 4 else "walk"
    dest.write_text(json.dumps(measure(n, store_dir, dest.with_suffix(".parquet"), unit), default=str))
