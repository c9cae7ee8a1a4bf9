"""``python -m bench [NAME ...]``: run the benchmarks at scale, print figures, write .bench/NAME.json.

Each module ``bench/bench_NAME.py`` exposes ``run() -> dict``. Benchmarks read ../shared/data and are
never part of the test suite.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = Path(".bench")


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )
    chosen = argv or names
    OUT.mkdir(exist_ok=True)
    failed = 0
    for name in chosen:
        if name not in names:
            print(f"unknown benchmark {name!r}; have {names}")
            return 2
        mod = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            figures = mod.run()
        except Exception as err:  # a broken benchmark must not hide the others' figures
            failed += 1
            print(f"   FAILED: {type(err).__name__}: {err}")
            continue
        figures["bench_wall_s"] = round(time.perf_counter() - t0, 2)
        for k, v in figures.items():
            print(f"   {k}: {v}")
        (OUT / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
