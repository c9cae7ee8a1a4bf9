"""Models at scale on the shared S&P 500 file (488 symbols): speed, memory and honest quality.

Figures:
- LightGBM walk-forward training time (per fold and total) on the full universe;
- LSTM seconds per epoch (steady state, tracing excluded) on a subset of symbols, and the share of a
  fit spent before the first epoch (graph tracing);
- peak memory (max RSS of this process);
- quality, walk-forward with rolling windows, out of sample 2005-2017 (one test year per fold): pooled
  AUC/accuracy and the per-session cross-sectional IC with its t-statistic of LightGBM, the momentum
  model and their ensemble (weights learned on each fold's validation tail) beside the baselines
  (always-up, yesterday, momentum) and the shuffled-label control (LightGBM on permuted labels).

By default the LSTM is timed (seconds per epoch on a subset) but not walk-forwarded on 488 symbols:
a fold holds ~250k training windows (~0.6 GB of float32 windows, several seconds per epoch, up to 15
epochs) and 13 folds add a quarter of an hour; BENCH_MODELS_LSTM_WF=1 adds it as a member of the
ensemble and as a model of its own. Rows with high < low or a close-to-close move beyond +-75% (the
ingest's hard bound) are dropped first, as the ingest would quarantine them; their count is reported.

Knobs (environment): BENCH_MODELS_SYMBOLS (all), BENCH_MODELS_FOLDS (13), BENCH_MODELS_TRAIN_DAYS (756),
BENCH_MODELS_MAX_TRAIN_ROWS (250000), BENCH_MODELS_LSTM_SYMBOLS (60), BENCH_MODELS_LSTM_DAYS (504),
BENCH_MODELS_LSTM_WF (0).
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import numpy as np
import polars as pl


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _clean(bars: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop rows the ingest would quarantine (high < low, |close move| > 75%)."""
    move = (pl.col("close") / pl.col("close").shift(1).over("symbol") - 1).abs()
    keep = (pl.col("high") >= pl.col("low")) & (move.fill_null(0) <= 0.75)
    out = bars.filter(keep)
    return out, bars.height - out.height


def _lstm_epoch_seconds(frame: pl.DataFrame, n_symbols: int, n_days: int) -> dict[str, Any]:
    """Seconds per epoch of the default-size LSTM, timed per epoch by a callback (median of epochs 2-3:
    the first epoch carries the graph tracing, reported separately)."""
    import keras

    from models.lstm_model import LSTMModel
    from stockflow.features import FEATURE_COLUMNS, FEATURE_SET_VERSION

    syms = frame.get_column("symbol").unique().sort().to_list()[:n_symbols]
    rows = frame.filter(pl.col("symbol").is_in(syms) & ~pl.col("warmup") & pl.col("y_up").is_not_null())
    rows = rows.group_by("symbol", maintain_order=True).tail(n_days).sort(["symbol", "session"])
    X = rows.select(FEATURE_COLUMNS).to_numpy()
    y = rows.get_column("y_up").cast(pl.Float32).to_numpy()
    m = LSTMModel(FEATURE_COLUMNS, feature_set_version=FEATURE_SET_VERSION)
    m.mean, m.std = X.mean(axis=0), np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    windows = m._inputs(X, rows.get_column("symbol").to_numpy())
    keras.utils.set_random_seed(0)
    net = m._build()
    stamps: list[float] = []

    class Timer(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    net.fit(windows, y, epochs=3, batch_size=int(m.params["batch_size"]), callbacks=[Timer()], verbose=0)
    epochs = [stamps[i + 1] - stamps[i] for i in range(0, len(stamps), 2)]
    steady = float(np.median(epochs[1:]))
    return {
        "lstm_rows": int(X.shape[0]),
        "lstm_symbols": len(syms),
        "lstm_window_units": f"{m.params['window']}x{m.params['units']}",
        "lstm_s_per_epoch": round(steady, 2),
        "lstm_windows_per_s": round(X.shape[0] / steady) if steady > 0 else None,
        "lstm_first_epoch_s": round(epochs[0], 2),
    }


def run() -> dict[str, Any]:
    """Run the benchmark; returns the figures (see the module docstring)."""
    from bench.bench_features import load_shared
    from models.ensemble import EnsembleModel
    from models.factory import params_from_settings
    from stockflow.config import load_settings
    from stockflow.evaluation import comparison_table, default_baselines, folds, model_metrics, split
    from stockflow.features import build_features
    from stockflow.retrain import train_config
    from stockflow.training import Recipe, fit_recipes, predict_rows, usable_rows

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    bars = load_shared().filter(pl.col("session") >= pl.date(1999, 1, 1))
    n_sym = _env("BENCH_MODELS_SYMBOLS", 0)
    if n_sym:
        keep = bars.get_column("symbol").unique().sort().to_list()[:n_sym]
        bars = bars.filter(pl.col("symbol").is_in(keep))
    bars, dropped = _clean(bars)
    out["bars_rows"] = bars.height
    out["bars_dropped_as_defects"] = dropped
    t = time.perf_counter()
    settings = load_settings(
        models={"max_train_rows": _env("BENCH_MODELS_MAX_TRAIN_ROWS", 250_000), "val_days": 126}
    )
    frame = build_features(bars, settings.features)
    out["features_s"] = round(time.perf_counter() - t, 1)
    out["symbols"] = frame.get_column("symbol").n_unique()
    out["feature_rows"] = frame.height
    del bars

    cfg = train_config(settings)
    sessions = usable_rows(frame).get_column("session").unique().to_list()
    train_days, n_folds = _env("BENCH_MODELS_TRAIN_DAYS", 756), _env("BENCH_MODELS_FOLDS", 13)
    fs = folds(sessions, train_days, 252, cfg.purge_days, n_folds, expanding=False)
    out["folds"] = len(fs)
    out["oos_window"] = f"{fs[0].test_start} .. {fs[-1].test_end}"
    lgbm = Recipe("lightgbm", params_from_settings("lightgbm", settings.models))
    mom = Recipe("momentum", params_from_settings("momentum", settings.models))
    lstm = (
        Recipe("lstm", params_from_settings("lstm", settings.models))
        if _env("BENCH_MODELS_LSTM_WF", 0)
        else None
    )
    lstm_s: list[float] = []
    parts: list[pl.DataFrame] = []
    lgbm_s: list[float] = []
    control_s: list[float] = []
    train_rows: list[int] = []
    for fold in fs:
        train, test = split(frame, fold, cfg.label_horizon)
        train, test = train.sort(["symbol", "session"]), test.sort(["symbol", "session"])
        keys = test.select("symbol", "session", "y_up", "fwd_ret").with_columns(
            pl.lit(fold.index).alias("fold")
        )

        def add(name: str, kind: str, p: np.ndarray, keys: pl.DataFrame = keys) -> None:
            parts.append(
                keys.with_columns(pl.lit(name).alias("model"), pl.lit(kind).alias("kind"), pl.Series("p", p))
            )

        t = time.perf_counter()
        fitted = fit_recipes(train, {"lightgbm": lgbm}, cfg)
        lgbm_s.append(time.perf_counter() - t)
        train_rows.append(fitted.fit_rows.height)
        fitted_m = fit_recipes(train, {"momentum_model": mom}, cfg)
        members = [fitted.models["lightgbm"], fitted_m.models["momentum_model"]]
        if lstm is not None:
            t = time.perf_counter()
            members.append(fit_recipes(train, {"lstm": lstm}, cfg).models["lstm"])
            lstm_s.append(time.perf_counter() - t)
        val = fitted.val_rows
        assert val is not None
        Xv = val.select(cfg.feature_columns).to_numpy()
        ens = EnsembleModel.from_members(
            members,
            X_val=Xv,
            y_val=val.get_column("y_up").cast(pl.Int64).to_numpy(),
            groups_val=val.get_column("symbol").to_numpy(),
        )
        named = [("momentum_model" if m.kind == "momentum" else m.kind, m) for m in members]
        for name, model in [*named, ("ensemble", ens)]:
            add(name, "model", predict_rows(model, frame, test, cfg.feature_columns))
        t = time.perf_counter()
        ctl = fit_recipes(train, {"control": lgbm}, cfg, shuffle_seed=cfg.seed + 1000 + fold.index)
        control_s.append(time.perf_counter() - t)
        add(
            "shuffled_control(lightgbm)",
            "control",
            predict_rows(ctl.models["control"], frame, test, cfg.feature_columns),
        )
        for name, fn in default_baselines(cfg.momentum_column).items():
            add(name, "baseline", fn(train, test))
        print(
            f"   fold {fold.index}: test {fold.test_start}..{fold.test_end}, "
            f"train rows {train_rows[-1]:,}, lightgbm {lgbm_s[-1]:.1f}s"
            + (f", lstm {lstm_s[-1]:.1f}s" if lstm_s else ""),
            flush=True,
        )

    preds = pl.concat(parts).with_columns(pl.col("fold").cast(pl.Int32))
    metrics = model_metrics(preds, label_horizon=cfg.label_horizon)
    out["lightgbm_train_s_total"] = round(sum(lgbm_s), 1)
    out["lightgbm_train_s_per_fold"] = round(float(np.mean(lgbm_s)), 1)
    out["lightgbm_train_rows_per_fold"] = int(np.mean(train_rows))
    out["control_train_s_total"] = round(sum(control_s), 1)
    if lstm_s:
        out["lstm_walk_forward_train_s_total"] = round(sum(lstm_s), 1)
    for name, m in metrics.items():
        for k in ("roc_auc", "accuracy", "ic_mean", "ic_t", "ic_n_sessions"):
            v = m.get(k)
            out[f"{name}.{k}"] = round(v, 4) if isinstance(v, float) else v
    out["ensemble_weights_last_fold"] = {k: round(v, 3) for k, v in ens.meta.get("weights", {}).items()}
    out["comparison_table"] = (
        comparison_table(metrics).select("model", "roc_auc", "ic_mean", "ic_t").to_dicts()
    )
    out.update(
        _lstm_epoch_seconds(frame, _env("BENCH_MODELS_LSTM_SYMBOLS", 60), _env("BENCH_MODELS_LSTM_DAYS", 504))
    )
    out["peak_rss_mb"] = round(_rss_mb())
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out
