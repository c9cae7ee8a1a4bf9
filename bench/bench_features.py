"""Features at scale: all 488 symbols of the shared S&P 500 file.

Figures: wall time of ``build_features`` against a bare loop of the same TA-Lib calls over the same
numpy arrays (target ratio <= 1.5), the share taken by the cross-sectional ranks, the cost of writing
the ~0.6 GB feature matrix into fresh memory once (the bare loop keeps nothing, so this is overhead it
never pays), rows/s, peak memory, skipped symbols; then (unless BENCH_FEATURES_QUALITY=0) an honest
out-of-sample check: rolling walk-forward over 2005-2017, per-session cross-sectional IC of a plain
LightGBM on these features against momentum, yesterday, always-up and a shuffled-label control.

Knobs (environment): BENCH_FEATURES_QUALITY (1), BENCH_QUALITY_TRAIN_DAYS (1260), BENCH_QUALITY_TEST_DAYS
(252), BENCH_QUALITY_MAX_TRAIN_ROWS (400000), BENCH_QUALITY_ROUNDS (100), BENCH_QUALITY_THREADS (1),
BENCH_QUALITY_MODELS ("cs"; "cs,dir" adds LightGBM on the direction label; the shuffled-label control
retrains the first one).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

SHARED = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "sp500_cc0"
    / "sp500_2018_members_1962-2017_daily.csv.gz"
)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def load_shared(path: Path = SHARED) -> pl.DataFrame:
    """The shared CSV as a canonical bar frame (read with polars directly, no database)."""
    from stockflow.domain.market import conform_bars

    raw = pl.read_csv(
        path,
        schema={
            "symbol": pl.Utf8,
            "date": pl.Utf8,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
    )
    return conform_bars(raw.with_columns(pl.col("date").str.to_date().alias("session")))


def bare_loop(arrays: list[np.ndarray], blocks: list[tuple[str, int, int]]) -> tuple[float, float]:
    """(wall s, CPU s) of the same TA-Lib calls over the same per-symbol slices, nothing else."""
    from stockflow.features.indicators import symbol_features

    t0, c0 = time.perf_counter(), time.process_time()
    for _, a, b in blocks:
        symbol_features(*(x[a:b] for x in arrays))
    return time.perf_counter() - t0, time.process_time() - c0


def fresh_write(n_rows: int, n_features: int) -> float:
    """Seconds to write the feature matrix once into freshly allocated memory: the floor of what
    materializing the output costs on this machine (first-touch page faults; numpy advises transparent
    huge pages for large arrays, and a busy kernel may compact memory synchronously on first touch)."""
    t0 = time.perf_counter()
    out = np.empty((n_features, n_rows))
    for j in range(n_features):
        out[j] = 1.0
    elapsed = time.perf_counter() - t0
    del out
    return elapsed


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(fn: Any) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def speed(bars: pl.DataFrame, repeats: int = 3) -> tuple[dict[str, Any], pl.DataFrame]:
    """Timings of build_features vs the bare loop: best of ``repeats``, interleaved so that all three
    share the same background load. CPU seconds are given too: they are less sensitive to other
    processes on a busy machine (polars' own threads count in them)."""
    from stockflow.config.sections import FeatureSettings
    from stockflow.features.build import _build, _partition, build_features_report
    from stockflow.features.spec import BASE_FEATURES

    settings = FeatureSettings()
    sorted_bars, blocks = _partition(bars)
    arrays = [
        np.ascontiguousarray(sorted_bars.get_column(c).to_numpy(), dtype=np.float64)
        for c in ("open", "high", "low", "close", "volume")
    ]
    bare: list[tuple[float, float]] = []
    per_symbol: list[tuple[float, float]] = []
    full: list[tuple[float, float]] = []
    rss_before = _rss_mb()
    result = None
    faults: dict[str, int] = {}
    writes: list[float] = []
    for i in range(repeats):
        writes.append(fresh_write(bars.height, len(BASE_FEATURES)))
        f0 = _faults()
        bare.append(bare_loop(arrays, blocks))
        f1 = _faults()
        w, c, _res = _timed(lambda: _build(bars, settings, ranks=False))
        f2 = _faults()
        per_symbol.append((w, c))
        del _res
        result = None  # free the previous frame first, as a pipeline run would
        w, c, result = _timed(lambda: build_features_report(bars, settings))
        full.append((w, c))
        if i == repeats - 1:
            faults = {"bare": f1 - f0, "without_ranks": f2 - f1}
    assert result is not None
    frame = result.frame

    def best(xs: list[tuple[float, float]], i: int) -> float:
        return min(x[i] for x in xs)

    b_w, b_c = best(bare, 0), best(bare, 1)
    s_w, s_c = best(per_symbol, 0), best(per_symbol, 1)
    f_w, f_c = best(full, 0), best(full, 1)
    reasons: dict[str, int] = {}
    for r in result.skipped.values():
        key = r.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    figures = {
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "symbols_in": len(blocks),
        "symbols_out": len(result.symbols),
        "skipped": len(result.skipped),
        "skipped_reasons": reasons,
        "rows_in": bars.height,
        "rows_out": frame.height,
        "usable_rows": result.usable_rows,
        "feature_columns": len(
            [c for c in frame.columns if c not in ("symbol", "session", "warmup", "fwd_ret", "y_up")]
        ),
        "bare_talib_loop_s": round(b_w, 3),
        "build_without_ranks_s": round(s_w, 3),
        "build_features_s": round(f_w, 3),
        "ratio_without_ranks_wall": round(s_w / b_w, 2),
        "ratio_without_ranks_cpu": round(s_c / b_c, 2),
        "ratio_build_vs_bare_wall": round(f_w / b_w, 2),
        "ratio_build_vs_bare_cpu": round(f_c / b_c, 2),
        "cross_sectional_ranks_s": round(f_w - s_w, 3),
        "fresh_output_write_s": round(min(writes), 3),
        "rows_per_s": int(bars.height / f_w),
        # Writing ~0.6 GB of fresh output is the main cost beyond the bare loop (which keeps nothing):
        # minor page faults show it.
        "page_faults_bare": faults.get("bare"),
        "page_faults_without_ranks": faults.get("without_ranks"),
        "peak_rss_mb": round(_rss_mb(), 1),
        "rss_growth_during_build_mb": round(_rss_mb() - rss_before, 1),
        "feature_frame_mb": round(frame.estimated_size("mb"), 1),
    }
    return figures, frame


def quality(frame: pl.DataFrame) -> dict[str, Any]:
    """Walk-forward 2005-2017 cross-sectional IC of LightGBM vs baselines and the shuffled control."""
    from stockflow.evaluation.baselines import add_cross_sectional_label
    from stockflow.evaluation.quality import lightgbm_factory, quality_summary, walk_forward_quality

    env = os.environ.get
    rounds = int(env("BENCH_QUALITY_ROUNDS", "100"))
    kinds = [k.strip() for k in env("BENCH_QUALITY_MODELS", "cs").split(",") if k.strip()]
    # One thread: on a shared 2-core machine OpenMP threads spin against other processes and LightGBM
    # ran 4-7x slower per boosting round with 2 threads than with 1.
    threads = int(env("BENCH_QUALITY_THREADS", "1"))
    factory = lightgbm_factory(num_boost_round=rounds, num_threads=threads)
    models = {f"lgbm_{k}": factory for k in kinds}
    labels = {"lgbm_cs": "y_cs_up", "lgbm_dir": "y_up"}
    t0 = time.perf_counter()
    comp = walk_forward_quality(
        add_cross_sectional_label(frame.filter(pl.col("session") >= dt.date(1998, 1, 1))),
        models,
        oos_start=dt.date(2005, 1, 1),
        train_days=int(env("BENCH_QUALITY_TRAIN_DAYS", "1260")),
        test_days=int(env("BENCH_QUALITY_TEST_DAYS", "252")),
        train_labels={m: labels[m] for m in models},
        max_train_rows=int(env("BENCH_QUALITY_MAX_TRAIN_ROWS", "400000")),
        shuffled_control=next(iter(models)),
    )
    out = {"quality_s": round(time.perf_counter() - t0, 1), **quality_summary(comp)}
    print(comp.table)
    return {f"quality.{k}": v for k, v in out.items()}


def run() -> dict[str, Any]:
    """All figures of this benchmark."""
    if not SHARED.exists():
        return {"skipped": f"shared dataset not found at {SHARED}"}
    t0 = time.perf_counter()
    bars = load_shared()
    figures: dict[str, Any] = {"read_csv_s": round(time.perf_counter() - t0, 2)}
    speed_figures, frame = speed(bars)
    figures.update(speed_figures)
    del bars
    if os.environ.get("BENCH_FEATURES_QUALITY", "1") != "0":
        figures.update(quality(frame))
    return figures
