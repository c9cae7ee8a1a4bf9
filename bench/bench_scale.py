"""Cost curves of the scale-out path (issue 14): wall time, CPU seconds of all processes and peak memory
per process (driver and each worker) of features (returned, or stored), retrain (features, walk-forward
with LightGBM on 4 folds, final fit) and the 5 backtest strategies at 100, 488, 2,000 and 5,000 symbols,
in process vs a Dask LocalCluster of 2 worker processes, with the growth exponent (slope of log wall
time on log symbols). Sizes above 488 are SYNTHETIC (bench/scale_job.py says how).

Each measurement runs in its own process (bench/scale_job.py) under a timeout, so one that would not end
or would exhaust memory is reported as such and the others still run. ``BENCH_SCALE_PLAN`` picks jobs
("stage:mode:n,..."), ``BENCH_SCALE_TIMEOUT`` the seconds per job (default 600). Results are appended to
.bench/scale/results.jsonl as they come.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(".bench") / "scale" / "results.jsonl"
SIZES = (100, 488, 2000, 5000)
STAGES = ("features", "features_store", "backtest", "retrain")


def default_plan() -> list[tuple[str, str, int]]:
    """Every (stage, mode, size), smallest sizes first so a bounded run still gives whole curves."""
    return [(st, m, n) for n in SIZES for st in STAGES for m in ("inproc", "dask")]


def _plan() -> list[tuple[str, str, int]]:
    raw = os.environ.get("BENCH_SCALE_PLAN")
    if not raw:
        return default_plan()
    out = []
    for item in raw.split(","):
        st, m, n = item.strip().split(":")
        out.append((st, m, int(n)))
    return out


def exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(wall) on log(symbols): 1.0 = linear growth."""
    pts = [(math.log(n), math.log(w)) for n, w in points if w > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / den, 2) if den else None


def _at(rows: list[dict[str, Any]], stage: str, mode: str, n: int) -> dict[str, Any] | None:
    for r in rows:
        if r.get("stage") == stage and r.get("mode") == mode and r["symbols"] == n and "wall_s" in r:
            return r
    return None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Curves and exponents per (stage, mode), and the Dask overhead at 488 symbols."""
    out: dict[str, Any] = {}
    for st in STAGES:
        for m in ("inproc", "dask"):
            pts = [r for r in rows if r.get("stage") == st and r.get("mode") == m and "wall_s" in r]
            pts.sort(key=lambda r: r["symbols"])
            out[f"{st}_{m}"] = {
                r["symbols"]: {
                    "wall_s": r["wall_s"],
                    "cpu_s": r.get("cpu_s_total"),
                    "peak_mb_max_process": r["peak_rss_mb_max_process"],
                    "peak_mb_driver": r["peak_rss_mb_driver"],
                }
                for r in pts
            }
            out[f"{st}_{m}_exponent"] = exponent([(r["symbols"], r["wall_s"]) for r in pts])
        a, b = (_at(rows, st, m, 488) for m in ("inproc", "dask"))
        if a and b:
            out[f"{st}_dask_overhead_at_488"] = f"{100 * (b['wall_s'] / a['wall_s'] - 1):+.0f}%"
            if a.get("cpu_s_total") and b.get("cpu_s_total"):
                # CPU seconds of all processes: what the Dask path costs beyond the work, whatever the load.
                out[f"{st}_dask_cpu_overhead_at_488"] = (
                    f"{100 * (b['cpu_s_total'] / a['cpu_s_total'] - 1):+.0f}%"
                )
    return out


def run() -> dict[str, Any]:
    """Run the plan, one process per job; return the curves."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    timeout = int(os.environ.get("BENCH_SCALE_TIMEOUT", "600"))
    rows: list[dict[str, Any]] = []
    for st, m, n in _plan():
        dest = RESULTS.parent / f"{st}_{m}_{n}.json"
        t = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.scale_job", st, m, str(n), str(dest)],
                timeout=timeout,
                check=False,
                capture_output=True,
                text=True,
            )
            (RESULTS.parent / f"{st}_{m}_{n}.log").write_text(proc.stdout + proc.stderr)  # whole log kept
            if proc.returncode == 0:
                row = json.loads(dest.read_text())
            else:
                tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
                row = {"stage": st, "mode": m, "symbols": n, "failed": f"rc {proc.returncode}: {tail[0]}"}
        except subprocess.TimeoutExpired:
            row = {"stage": st, "mode": m, "symbols": n, "failed": f"timeout after {timeout}s"}
        row["job_wall_s"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        with RESULTS.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        print(f"   {st} {m} {n}: {row.get('wall_s', row.get('failed'))}", flush=True)
    return {"machine_cpus": os.cpu_count(), "jobs": len(rows), **summarize(rows)}
