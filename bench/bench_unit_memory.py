"""Peak memory of ONE unit of the retrain at 2,000 and 5,000 symbols, each in a fresh process
(bench/unit_job.py): a walk-forward unit (LightGBM + shuffled control + baselines, one fold) and the final
fit (LightGBM on the final window, with its drift reference). What one Dask worker of the retrain needs,
measured directly instead of through the whole retrain on a cluster (>20 min at 5,000 on 2 cores).
``BENCH_UNIT_UNITS`` picks the units ("walk,final").

The features are built once per size into a chunked store under .bench/unit_memory/ (in a subprocess,
chunk after chunk, as the workers write them) from the synthetic universe of bench/scale_job.py.
``BENCH_UNIT_SIZES`` picks the sizes ("2000,5000"); ``BENCH_UNIT_BEFORE`` names another checkout of the
code (e.g. a ``git worktree`` of the commit before a change): each size is then measured with it and with
this checkout, one after the other, and the predictions compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
CACHE = Path(".bench") / "unit_memory"


def build_store(n: int) -> Path:
    """The chunked store of ``n`` symbols (built here once; reused)."""
    from bench.scale_job import MODELS, universe
    from stockflow.compute.features import build_features_to_store
    from stockflow.config import load_settings

    out = (CACHE / f"store_{n}").resolve()
    if (out / "DONE").exists():
        return out
    settings = load_settings(models=MODELS)
    build_features_to_store(universe(n), settings.features, out, chunk_symbols=64)
    (out / "DONE").write_text("ok")
    return out


def _job(n: int, store: Path, code: Path | None, tag: str, unit: str) -> dict[str, Any]:
    dest = (CACHE / f"unit_{unit}_{n}_{tag}.json").resolve()
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    proc = subprocess.run(
        [sys.executable, str(HERE / "unit_job.py"), str(n), str(store), str(dest), unit],
        env=env,
        cwd=str(code) if code is not None else None,
        capture_output=True,
        text=True,
        timeout=int(os.environ.get("BENCH_UNIT_TIMEOUT", "1200")),
        check=False,
    )
    if proc.returncode != 0:
        failed = {"failed": proc.returncode, "stderr": proc.stderr[-2000:]}
        return {"symbols": n, "tag": tag, "unit": unit, **failed}
    return {"tag": tag, **json.loads(dest.read_text())}


def run() -> dict[str, Any]:
    """Figures per size (and per checkout when ``BENCH_UNIT_BEFORE`` is set)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in os.environ.get("BENCH_UNIT_SIZES", "2000,5000").split(",")]
    before = os.environ.get("BENCH_UNIT_BEFORE")
    out: dict[str, Any] = {}
    for n in sizes:
        build = subprocess.run(
            [sys.executable, "-c", f"from bench.bench_unit_memory import build_store; build_store({n})"],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            out[f"n{n}"] = {"failed": "store build", "stderr": build.stderr[-2000:]}
            continue
        store = (CACHE / f"store_{n}").resolve()
        for unit in os.environ.get("BENCH_UNIT_UNITS", "walk,final").split(","):
            runs = []
            if before:
                runs.append(_job(n, store, Path(before).resolve(), "before", unit))
            runs.append(_job(n, store, None, "after", unit))
            for r in runs:
                out[f"{unit}_n{n}_{r['tag']}"] = r
            if len(runs) == 2 and "failed" not in runs[0] and "failed" not in runs[1]:
                a, b = (pl.read_parquet(CACHE / f"unit_{unit}_{n}_{t}.parquet") for t in ("before", "after"))
                out[f"{unit}_n{n}_same_predictions"] = a.equals(b)
    with (CACHE / "results.jsonl").open("a") as f:
        f.write(json.dumps(out, default=str) + "\n")
    return out
