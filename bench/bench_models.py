"""Models on the shared S&P 500 file (488 symbols): a Qlib-format benchmark table, out of sample.

READ FIRST: the file holds the 2018 members of the S&P 500 only. Stocks that left the index (failed,
acquired, shrunk) before 2018 are missing, so every return here is inflated by survivorship bias, and
so is the equal-weight universe. Every figure is out-of-sample: rolling walk-forward folds with a purge
gap, models refit per fold on the preceding ``train_days`` sessions only.

Per feature set (ta-v1, a158-v1) and seed, on the same folds (:func:`stockflow.ml.training.fold_predictions`,
the retrain's own per-fold unit): LightGBM, LSTM, their ensemble with the momentum model, the momentum
model, the shuffled-label control, the momentum and reversal rules, and the equal-weight universe. Per
row: IC (Pearson) and ICIR, Rank IC and Rank ICIR (per-session series, mean / std), the annualized
excess return over the equal-weight universe of the net-of-cost top-k portfolio (select_topk with the
live trade's top_k / hold_buffer / max_changes, ``models.cost_bps`` per unit traded), its information
ratio, max drawdown (of the summed excess) and mean daily turnover; mean +- std over the seeds.

Bounded by default (a recent window; minutes, not hours). Knobs (environment): BENCH_MODELS_START
(2009-01-01: bars loaded from), BENCH_MODELS_FOLDS (2), BENCH_MODELS_TEST_DAYS (252),
BENCH_MODELS_TRAIN_DAYS (756), BENCH_MODELS_SEEDS (3), BENCH_MODELS_SETS (ta-v1,a158-v1),
BENCH_MODELS_KINDS (lightgbm,lstm,ensemble,momentum), BENCH_MODELS_HORIZONS (the settings' default;
several, e.g. 1,5,10, print one table each: the evidence for features.label_horizon),
BENCH_MODELS_MAX_TRAIN_ROWS (100000, which bounds the LSTM: the whole table took 27 min on 2 busy
cores; LightGBM alone with 400000, about 820 sessions of 488 symbols, measured better),
BENCH_MODELS_LSTM_EPOCHS (2), BENCH_MODELS_SYMBOLS (all). With ``compute.dask_address`` set
(STOCKFLOW_COMPUTE__DASK_ADDRESS=local or tcp://...) the seeds run in parallel, one unit per seed on
the cluster (:func:`run_seeds`); the figures are those of the serial path.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import numpy as np
import polars as pl

#: Table rows: (label, model name in the predictions).
ROWS: tuple[tuple[str, str], ...] = (
    ("LightGBM", "lightgbm"),
    ("LSTM", "lstm"),
    ("Ensemble", "ensemble"),
    ("Momentum model", "momentum_model"),
    ("Momentum rule (ret_20)", "momentum"),
    ("Reversal rule (-ret_5)", "reversal"),
    ("Shuffled control", "shuffled_control(lightgbm)"),
    ("Equal weight", "equal_weight"),
)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("IC", "pearson_ic_mean", ".4f"),
    ("ICIR", "pearson_ic_ir", ".3f"),
    ("Rank IC", "ic_mean", ".4f"),
    ("Rank ICIR", "ic_ir", ".3f"),
    ("Ann. excess (net)", "excess_ann", ".2%"),
    ("IR", "ir", ".2f"),
    ("Max DD", "max_drawdown", ".2%"),
    ("Turnover", "turnover", ".3f"),
)

PORTFOLIO_KEYS = ("excess_ann", "ir", "max_drawdown", "turnover")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _clean(bars: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop rows the ingest would quarantine (high < low, |close move| > 75%)."""
    move = (pl.col("close") / pl.col("close").shift(1).over("symbol") - 1).abs()
    keep = (pl.col("high") >= pl.col("low")) & (move.fill_null(0) <= 0.75)
    out = bars.filter(keep)
    return out, bars.height - out.height


def _recipes(settings: Any, kinds: list[str], cols: tuple[str, ...]) -> dict[str, Any]:
    from models.factory import effective_params, params_from_settings
    from stockflow.ml.retrain import entry_name
    from stockflow.ml.training import Recipe

    return {
        entry_name(k): Recipe(k, effective_params(k, params_from_settings(k, settings.models, cols)))
        for k in kinds
    }


def one_seed(frame: pl.DataFrame, folds: list[Any], settings: Any, kinds: list[str]) -> dict[str, dict]:
    """Figures per model of one seed: session-level IC summary plus the top-k portfolio."""
    from stockflow.evaluation import model_metrics
    from stockflow.evaluation.figures import panel_figures
    from stockflow.ml.retrain import topk_config, train_config
    from stockflow.ml.training import fold_predictions

    cfg = train_config(settings)
    recipes = _recipes(settings, kinds, cfg.feature_columns)
    parts = []
    for fold in folds:
        t = time.perf_counter()
        parts.append(fold_predictions(frame, fold, recipes, cfg))
        print(f"      fold {fold.index} {fold.test_start}..{fold.test_end}: {time.perf_counter() - t:.0f}s",
              flush=True)  # fmt: skip
    preds = pl.concat([p for p in parts if not p.is_empty()])
    metrics = model_metrics(preds, label_horizon=cfg.label_horizon)
    for name, figs in panel_figures(preds, topk_config(settings), label_horizon=cfg.label_horizon).items():
        metrics.setdefault(name, {}).update(figs)
    out: dict[str, dict] = {}
    for name, m in metrics.items():
        pf = m.get("portfolio") or {}
        out[name] = {k: (pf.get(k) if k in PORTFOLIO_KEYS else m.get(k)) for _, k, _ in COLUMNS}
        out[name]["bench_ann"] = pf.get("bench_ann")
    return out


def run_seeds(
    executor: Any, frame: pl.DataFrame, folds: list[Any], base: Any, models: dict[str, Any], **kw: Any
) -> list[dict[str, dict]]:
    """:func:`one_seed` for each of ``kw["seeds"]`` (settings ``models.seed`` 42 + seed) with
    ``kw["kinds"]``: one after the other in process, or one unit per seed in parallel on a cluster (the
    frame placed there once); the figures in seed order either way."""
    frame_ref = executor.scatter(frame)
    handles = []
    for seed in kw["seeds"]:
        models_s = {**models, "seed": 42 + seed}
        settings = base.model_copy(update={"models": base.models.model_copy(update=models_s)})
        t = time.perf_counter()
        params = {"frame": frame_ref, "folds": folds, "settings": settings, "kinds": kw["kinds"]}
        handles.append(executor.submit(one_seed, params))
        if not executor.distributed:
            print(f"    seed {seed}: {time.perf_counter() - t:.0f}s", flush=True)
    return [h.result() for h in handles]


def _cell(values: list[float | None], spec: str) -> str:
    v = [x for x in values if x is not None and np.isfinite(x)]
    if not v:
        return "n/a"
    mean, sd = float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return f"{format(mean, spec)}±{format(sd, spec)}"


def format_table(per_seed: list[dict[str, dict]], title: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A Qlib-style markdown table (mean±std over seeds) and the same cells as data."""
    head = "| Model | " + " | ".join(c for c, _, _ in COLUMNS) + " |"
    lines = [f"### {title}", "", head, "|" + "---|" * (len(COLUMNS) + 1)]
    cells: dict[str, dict[str, str]] = {}
    for label, name in ROWS:
        if not any(name in s for s in per_seed):
            continue
        row = {c: _cell([s.get(name, {}).get(k) for s in per_seed], spec) for c, k, spec in COLUMNS}
        cells[label] = row
        lines.append(f"| {label} | " + " | ".join(row.values()) + " |")
    return "\n".join(lines), cells


def run() -> dict[str, Any]:
    """Run the benchmark; returns the figures and prints the tables (see the module docstring)."""
    from bench.bench_features import load_shared
    from stockflow.compute.executor import open_executor
    from stockflow.config import load_settings
    from stockflow.evaluation import folds
    from stockflow.features import build_features
    from stockflow.ml.training import usable_rows

    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "caveat": "2018 S&P 500 members only (survivorship bias inflates every return, the equal-weight "
        "universe's too); all figures out-of-sample, rolling walk-forward with a purge gap",
    }
    start = _env("BENCH_MODELS_START", "2009-01-01")
    bars = load_shared().filter(pl.col("session") >= pl.lit(start).str.to_date())
    n_sym = int(_env("BENCH_MODELS_SYMBOLS", "0"))
    if n_sym:
        keep = bars.get_column("symbol").unique().sort().to_list()[:n_sym]
        bars = bars.filter(pl.col("symbol").is_in(keep))
    bars, dropped = _clean(bars)
    out["bars_rows"], out["bars_dropped_as_defects"] = bars.height, dropped
    seeds = list(range(int(_env("BENCH_MODELS_SEEDS", "3"))))
    sets = _env("BENCH_MODELS_SETS", "ta-v1,a158-v1").split(",")
    kinds = _env("BENCH_MODELS_KINDS", "lightgbm,lstm,ensemble,momentum").split(",")
    n_folds, test_days = int(_env("BENCH_MODELS_FOLDS", "2")), int(_env("BENCH_MODELS_TEST_DAYS", "252"))
    train_days = int(_env("BENCH_MODELS_TRAIN_DAYS", "756"))
    default_h = load_settings().features.label_horizon
    horizons = [int(h) for h in _env("BENCH_MODELS_HORIZONS", str(default_h)).split(",")]
    models = {
        "max_train_rows": int(_env("BENCH_MODELS_MAX_TRAIN_ROWS", "100000")),
        "val_days": 126,
        "lstm_epochs": int(_env("BENCH_MODELS_LSTM_EPOCHS", "2")),
        "lstm_window": 10,
        "ensemble_members": [k for k in ("lightgbm", "momentum", "lstm") if k in kinds or k == "momentum"],
    }
    tables = []
    # compute.dask_address (STOCKFLOW_COMPUTE__DASK_ADDRESS): the seeds run in parallel on that cluster.
    with open_executor(load_settings()) as executor:
        where = "in parallel on Dask" if executor.distributed else "one after the other, in process"
        out["seeds_run"] = where
        for h in horizons:
            for fset in sets:
                t = time.perf_counter()
                feats = {"feature_set_version": fset, "label_horizon": h}
                base = load_settings(features=feats, models=models)
                frame = build_features(bars, base.features)
                feat_s = time.perf_counter() - t
                sessions = usable_rows(frame).get_column("session").unique().to_list()
                fs = folds(sessions, train_days, test_days, max(base.models.purge_days, h), n_folds,
                           expanding=False, label_horizon=h)  # fmt: skip
                key = f"h{h}.{fset}"
                out[f"{key}.features_s"] = round(feat_s, 1)
                out[f"{key}.oos"] = f"{fs[0].test_start}..{fs[-1].test_end} ({len(fs)} folds)"
                out[f"{key}.symbols"] = frame.get_column("symbol").n_unique()
                print(
                    f"   {key}: features {feat_s:.0f}s, {frame.height:,} rows, OOS {out[f'{key}.oos']}",
                    flush=True,
                )
                t = time.perf_counter()
                per_seed = run_seeds(executor, frame, fs, base, models, seeds=seeds, kinds=kinds)
                out[f"{key}.seeds_s"] = round(time.perf_counter() - t, 1)
                print(f"    {len(seeds)} seeds: {out[f'{key}.seeds_s']:.0f}s ({where})", flush=True)
                pf = base.portfolio
                title = (f"{fset}, label horizon {h}, top-k {pf.top_k}/buffer {pf.hold_buffer}/max changes "
                         f"{pf.max_changes}, cost {base.models.cost_bps:g} bps, OOS {out[f'{key}.oos']}, "
                         f"{len(seeds)} seeds")  # fmt: skip
                text, cells = format_table(per_seed, title)
                ew = [s.get("equal_weight", {}).get("bench_ann") for s in per_seed]
                text += f"\n\nEqual-weight universe return: {_cell(ew, '.2%')}/yr (survivorship-inflated)."
                tables.append(text)
                out[f"{key}.table"] = cells
                del frame
    print("\n" + out["caveat"] + "\n\n" + "\n\n".join(tables), flush=True)
    out["peak_rss_mb"] = round(_rss_mb())
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out
