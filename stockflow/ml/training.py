"""Training and walk-forward scoring of model recipes on a feature frame: plain, deterministic functions.

A *recipe* is (kind, params): what :func:`models.factory.make_model` needs to build a fresh model. Each
fold is scored by :func:`fold_predictions` from the frame and the fold alone (fixed seeds, no shared
state), so folds can run in any order, in parallel or on other workers, with the same results. Its
output has the long format of :func:`stockflow.evaluation.walk_forward_predictions` (fold, model,
kind, symbol, session, p, y_up, fwd_ret) so the features area's metrics and table apply unchanged.

Within a fold every model trains on the fold's training rows minus a purged validation tail (the last
``val_days`` sessions, ``purge_days`` before them dropped); the tail drives early stopping, Platt
calibration and the ensemble weights. Sequence models see, before each test row, the preceding rows of
the same symbol (features only, never labels), so the first test rows are not scored on padding.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.base import BaseModel
from models.ensemble import EnsembleModel
from models.factory import make_model
from stockflow.errors import DataError
from stockflow.evaluation import Fold, default_baselines, split
from stockflow.logs import get_logger


@dataclass(frozen=True)
class Recipe:
    """How to build a model: kind and parameters (JSON-able)."""

    kind: str
    params: Mapping[str, Any]

    def same_as(self, other: Recipe) -> bool:
        """Equal kind and parameters, thread counts aside (a refit would give the same model: LightGBM
        runs deterministic, whatever its threads)."""
        return self.kind == other.kind and _identity(self.params) == _identity(other.params)


def _identity(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if k != "num_threads"}
    if isinstance(out.get("members"), dict):
        out["members"] = {k: _identity(v) for k, v in out["members"].items()}
    return out


@dataclass(frozen=True)
class TrainConfig:
    """Everything besides data and recipes that decides a fit (all from settings)."""

    feature_columns: tuple[str, ...]
    feature_set_version: str
    label_horizon: int = 1
    val_days: int = 250
    purge_days: int = 5
    seed: int = 42
    momentum_column: str = "ret_20"
    max_train_rows: int | None = None
    control_kind: str = "lightgbm"
    #: The 0/1 column models learn: ``y_out`` (outperforms the universe over the horizon) by default.
    label: str = "y_out"


def usable_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows outside the warm-up, ordered by symbol and session (what models see)."""
    if "warmup" in frame.columns:
        frame = frame.filter(~pl.col("warmup"))
    return frame.sort(["symbol", "session"])


def validation_split(
    train: pl.DataFrame, val_days: int, purge_days: int
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The last ``val_days`` sessions of ``train`` as validation rows, ``purge_days`` sessions before them
    dropped so no fitting label reaches into validation. No split when the window is too short."""
    bounds = _validation_bounds(train, val_days, purge_days)
    if bounds is None:
        return train, None
    fit_end, val_start = bounds
    return train.filter(pl.col("session") <= fit_end), train.filter(pl.col("session") >= val_start)


def _validation_bounds(train: pl.DataFrame, val_days: int, purge_days: int) -> tuple[dt.date, dt.date] | None:
    """Last fitting session and first validation session of :func:`validation_split` (None: no split)."""
    if val_days <= 0:
        return None
    days = train.get_column("session").unique().sort()
    if days.len() < 2 * val_days + purge_days:
        # Keep most of a short window for fitting: validate on its last fifth instead.
        val_days = max(days.len() // 5, 0)
        if val_days < 5:
            return None
    return days[-(val_days + purge_days + 1)], days[-val_days]


def _cap(rows: pl.DataFrame, max_rows: int | None) -> pl.DataFrame:
    """The latest ``max_rows`` rows by session (then re-sorted by symbol, session)."""
    if max_rows is None or rows.height <= max_rows:
        return rows
    cut = rows.get_column("session").sort(descending=True)[max_rows - 1]
    return rows.filter(pl.col("session") >= cut).sort(["symbol", "session"])


def _xy(
    rows: pl.DataFrame, cols: Sequence[str], label: str = "y_out"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # copy=False: the frame's float64 columns need no second copy (the largest array of a fit).
    X = rows.select(list(cols)).to_numpy(writable=True).astype(np.float64, copy=False)
    y = rows.get_column(label).cast(pl.Int64).to_numpy() if label in rows.columns else np.zeros(0)
    return X, y, rows.get_column("symbol").to_numpy()


def _columns(rows: pl.DataFrame, cols: Sequence[str], keep: np.ndarray) -> np.ndarray:
    """``rows.select(cols)`` of the rows ``keep`` as one row-major float64 array, filled column by
    column: no frame of those rows, and LightGBM takes it as it is (it copies a column-major one)."""
    X = np.empty((int(keep.sum()), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        X[:, j] = rows.get_column(c).to_numpy()[keep]
    return X


def _excess(rows: pl.DataFrame) -> np.ndarray | None:
    return rows.get_column("fwd_excess").to_numpy() if "fwd_excess" in rows.columns else None


def with_context(
    frame: pl.DataFrame | None, target: pl.DataFrame, context_rows: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """``target`` rows plus up to ``context_rows - 1`` earlier usable rows of each symbol from ``frame``.

    Returns the widened rows (ordered by symbol, session) and, per widened row, the index of the target
    row it is (-1 for context rows), so results map back to ``target``'s own order.
    """
    if context_rows <= 1 or target.is_empty():
        return target, np.arange(target.height)
    if frame is None:
        raise ValueError(f"a model reading {context_rows} rows of context got no rows to read them from")
    starts = target.group_by("symbol").agg(pl.col("session").min().alias("_first"))
    before = (
        usable_rows(frame)
        .join(starts, on="symbol", how="inner")
        .filter(pl.col("session") < pl.col("_first"))
        .group_by("symbol", maintain_order=True)
        .tail(context_rows - 1)
        .drop("_first")
        .with_columns(pl.lit(-1, dtype=pl.Int64).alias("_target"))
    )
    widened = pl.concat(
        [
            before.select([*target.columns, "_target"]),
            target.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_target")),
        ],
        how="vertical_relaxed",
    ).sort(["symbol", "session"])
    return widened.drop("_target"), widened.get_column("_target").to_numpy()


def predict_rows(
    model: BaseModel, frame: pl.DataFrame | None, target: pl.DataFrame, cols: Sequence[str]
) -> np.ndarray:
    """P(up) of ``model`` for the ``target`` rows, in their order; sequence models read each symbol's
    preceding usable rows from ``frame`` as context."""
    rows, index = with_context(frame, target, model.context_rows)
    X, _, groups = _xy(rows, cols)
    p = model.predict_proba(X, groups=groups)
    out = np.empty(target.height)
    keep = index >= 0
    out[index[keep]] = p[keep]
    return out


@dataclass
class FittedSet:
    """Models fitted on one training split, by name, with the rows they were validated on (the fitting
    rows only where there are none: the drift reference falls back to them)."""

    models: dict[str, BaseModel]
    fit_rows: pl.DataFrame | None
    val_rows: pl.DataFrame | None


@dataclass(frozen=True)
class FitData:
    """The arrays every fit of one training split reads (built once: the models and the shuffled-label
    control of a fold share them; the control permutes ``y``/``yv`` into new arrays)."""

    X: np.ndarray
    y: np.ndarray
    g: np.ndarray
    Xv: np.ndarray | None
    yv: np.ndarray | None
    gv: np.ndarray | None
    ev: np.ndarray | None
    fit_rows: pl.DataFrame | None  # only when there are no validation rows
    val_rows: pl.DataFrame | None


def fit_data(train: pl.DataFrame, cfg: TrainConfig) -> FitData:
    """The fitting and validation arrays of ``train`` (purged validation tail held out), taken from its
    columns through row masks: no frame of the fitting rows is made unless ``max_train_rows`` caps them."""
    if cfg.label in train.columns and train.get_column(cfg.label).null_count():
        # Only when some label is missing: a copy of the training rows is the largest frame of a fit.
        train = train.filter(pl.col(cfg.label).is_not_null())
    cols = cfg.feature_columns
    bounds = _validation_bounds(train, cfg.val_days, cfg.purge_days)
    session = train.get_column("session")
    keep = (session <= bounds[0]).to_numpy() if bounds else np.ones(train.height, dtype=bool)
    src = train  # the rows ``keep`` of it are the fitting rows
    if cfg.max_train_rows is not None and int(keep.sum()) > cfg.max_train_rows:
        src = _cap(train.filter(pl.Series(keep)), cfg.max_train_rows)
        keep = np.ones(src.height, dtype=bool)
    y = src.get_column(cfg.label).cast(pl.Int64).to_numpy()[keep] if cfg.label in src.columns else np.zeros(0)
    X, g = _columns(src, cols, keep), src.get_column("symbol").to_numpy()[keep]
    # The fitting rows as a frame only when there are no validation rows (the drift reference's rows).
    fit_rows = None if bounds is not None else src
    val_rows = train.filter(session >= bounds[1]) if bounds else None
    if val_rows is None or not val_rows.height:
        return FitData(X, y, g, None, None, None, None, fit_rows, val_rows)
    Xv, yv, gv = _xy(val_rows, cols, cfg.label)
    return FitData(X, y, g, Xv, yv, gv, _excess(val_rows), fit_rows, val_rows)


def fit_recipes(
    train: pl.DataFrame | FitData,
    recipes: Mapping[str, Recipe],
    cfg: TrainConfig,
    *,
    shuffle_seed: int | None = None,
) -> FittedSet:
    """Fit every recipe on ``train`` (purged validation tail held out), or on its arrays (``fit_data``).

    An ensemble whose members' recipes are among the fitted models is combined from them instead of
    training its members again (the same fit it would do, once). ``shuffle_seed`` permutes the labels
    (shuffled-label control).
    """
    d = train if isinstance(train, FitData) else fit_data(train, cfg)
    cols = cfg.feature_columns
    X, y, g, Xv, yv, gv, ev = d.X, d.y, d.g, d.Xv, d.yv, d.gv, d.ev
    if X.shape[0] == 0:
        raise DataError("no training rows with labels in the window", rule="training_rows")
    if shuffle_seed is not None:
        rng = np.random.default_rng(shuffle_seed)
        y = rng.permutation(y)
        if yv is not None:
            yv = rng.permutation(yv)
    fitted: dict[str, BaseModel] = {}
    by_recipe: list[tuple[Recipe, BaseModel]] = []
    ensembles = {n: r for n, r in recipes.items() if r.kind == "ensemble"}
    for name, recipe in recipes.items():
        if recipe.kind == "ensemble":
            continue
        model = make_model(
            recipe.kind, cols, feature_set_version=cfg.feature_set_version, params=dict(recipe.params)
        )
        model.fit(X, y, X_val=Xv, y_val=yv, groups=g, groups_val=gv, excess_val=ev)
        fitted[name] = model
        by_recipe.append((recipe, model))
    for name, recipe in ensembles.items():
        members: list[BaseModel] = []
        for kind, params in dict(recipe.params.get("members") or {}).items():
            want = Recipe(kind, params)
            found = next((m for r, m in by_recipe if r.same_as(want)), None)
            if found is None:
                found = make_model(
                    kind, cols, feature_set_version=cfg.feature_set_version, params=dict(params)
                )
                found.fit(X, y, X_val=Xv, y_val=yv, groups=g, groups_val=gv, excess_val=ev)
                by_recipe.append((want, found))
            members.append(found)
        fitted[name] = EnsembleModel.from_members(members, X_val=Xv, y_val=yv, groups_val=gv, excess_val=ev)
    return FittedSet(fitted, d.fit_rows, d.val_rows)


def _context_rows(recipes: Mapping[str, Recipe], cfg: TrainConfig) -> int:
    """Rows of history the recipes' models read per prediction (1: the row alone), from unfitted models."""
    out = 1
    for r in recipes.values():
        subs = dict(r.params.get("members") or {}).items() if r.kind == "ensemble" else [(r.kind, r.params)]
        for kind, params in subs:
            model = make_model(kind, cfg.feature_columns, feature_set_version=cfg.feature_set_version,
                               params=dict(params))  # fmt: skip
            out = max(out, model.context_rows)
    return out


def _by_symbol_session(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` ordered by (symbol, session); as they are when already so (no copy)."""
    order = rows.select(pl.arg_sort_by("symbol", "session")).to_series().to_numpy()
    return rows if bool((order == np.arange(rows.height)).all()) else rows[order]


def fold_predictions(
    frame: pl.DataFrame | Callable[[], pl.DataFrame],
    fold: Fold,
    recipes: Mapping[str, Recipe],
    cfg: TrainConfig,
    *,
    aliases: Mapping[str, str] | None = None,
    control: bool = True,
    baselines: bool = True,
) -> pl.DataFrame:
    """Out-of-sample predictions of one fold: every recipe, the baselines and the shuffled-label control.

    ``aliases`` maps extra names to a recipe name whose predictions they share (e.g. the champion when
    its recipe equals a challenger's: the same fit, computed once). The per-(kind, fold) unit of work is
    this function with one recipe and ``control=False, baselines=False`` (an ensemble fits its own
    members then); a scheduler may run those units anywhere and concatenate the frames.

    ``frame`` may be a loader (a worker reading the fold's rows): then this function holds the only
    reference and drops the rows after the split when no model reads earlier rows as context, and the
    training rows once their arrays are built (memory of a unit: the arrays and the test rows).
    """
    rows: pl.DataFrame | None = frame() if callable(frame) else frame
    del frame
    assert rows is not None
    train, test = split(rows, fold, cfg.label_horizon)
    if train.is_empty() or test.is_empty():
        get_logger().warning("retrain: fold %s has no training or test rows; skipped", fold.index)
        return pl.DataFrame()
    context = rows if _context_rows(recipes, cfg) > 1 else None
    del rows  # with no context needed, the fold's rows are freed here
    train = _by_symbol_session(train)
    test = _by_symbol_session(test)
    # ``y_up`` of the long frame is the label the models learn (cfg.label), so AUC and log loss judge
    # what was predicted; ``fwd_ret_1`` feeds the top-k portfolio evaluation.
    keys = test.select(
        "symbol", "session", pl.col(cfg.label).alias("y_up"), "fwd_ret", "fwd_ret_1"
    ).with_columns(pl.lit(fold.index).alias("fold"))
    parts: list[pl.DataFrame] = []

    def add(name: str, kind: str, p: np.ndarray) -> None:
        parts.append(
            keys.with_columns(pl.lit(name).alias("model"), pl.lit(kind).alias("kind"), pl.Series("p", p))
        )

    fns = default_baselines(cfg.momentum_column) if baselines else {}
    base = {name: fn(train, test) for name, fn in fns.items()}
    data = fit_data(train, cfg)
    del train  # the fits read the arrays only
    for name, model in fit_recipes(data, recipes, cfg).models.items():
        p = predict_rows(model, context, test, cfg.feature_columns)
        add(name, "model", p)
        for alias, target in (aliases or {}).items():
            if target == name:
                add(alias, "model", p)
    if control:
        ctl = {"control": Recipe(cfg.control_kind, _control_params(recipes, cfg.control_kind))}
        shuffled = fit_recipes(data, ctl, cfg, shuffle_seed=cfg.seed + 1000 + fold.index)
        add(f"shuffled_control({cfg.control_kind})", "control",
            predict_rows(shuffled.models["control"], context, test, cfg.feature_columns))  # fmt: skip
    for name, p in base.items():
        add(name, "baseline", p)
    if not parts:
        return pl.DataFrame()
    return (
        pl.concat(parts)
        .select("fold", "model", "kind", "symbol", "session", "p", "y_up", "fwd_ret", "fwd_ret_1")
        .with_columns(pl.col("fold").cast(pl.Int32))
    )


def _control_params(recipes: Mapping[str, Recipe], kind: str) -> dict[str, Any]:
    """Parameters of the challenger of ``kind`` (the control must be the same learner), else defaults."""
    for r in recipes.values():
        if r.kind == kind:
            return dict(r.params)
    return {}


def final_window(frame: pl.DataFrame, train_days: int, label_horizon: int) -> pl.DataFrame:
    """Training rows of the final model: labelled usable rows of the last ``train_days`` sessions."""
    rows = usable_rows(frame).filter(pl.col("y_out").is_not_null())
    if rows.is_empty():
        raise DataError("no labelled rows outside the warm-up to train on", rule="training_rows")
    days = rows.get_column("session").unique().sort()
    start: dt.date = days[max(days.len() - train_days, 0)]
    return rows.filter(pl.col("session") >= start)


#: Sessions kept before a window's first session (sequence context, label lookups): generous.
CONTEXT_MARGIN_SESSIONS = 64


def window_bounds(
    sessions: pl.Series, first: dt.date, last: dt.date, margin: int = CONTEXT_MARGIN_SESSIONS
) -> tuple[dt.date, dt.date]:
    """First and last session of the rows a window ``first``..``last`` reads: ``margin`` sessions of
    ``sessions`` (sorted, all of the frame's) before ``first``, through ``last``."""
    idx = int(sessions.search_sorted(first))
    lo: dt.date = sessions[max(idx - margin, 0)]
    return lo, last


@dataclass(frozen=True)
class FinalFit:
    """Final models fitted on the latest window, each with its drift reference (small: no training rows)."""

    models: dict[str, BaseModel]
    references: dict[str, pl.DataFrame]
    train_start: dt.date
    train_end: dt.date


def final_fit(
    frame: pl.DataFrame | Callable[[], pl.DataFrame],
    recipes: Mapping[str, Recipe],
    cfg: TrainConfig,
    train_days: int,
) -> FinalFit:
    """Fit ``recipes`` on the final window of ``frame`` (its last ``train_days`` labelled sessions) and
    predict each one's drift reference. A subset of recipes gives the same models as all at once (each is
    fitted alone and seeded; an ensemble reuses the members fitted beside it). ``frame`` may be a loader:
    its rows are then freed as in :func:`fold_predictions` (the validation rows stay: drift reference)."""
    rows: pl.DataFrame | None = frame() if callable(frame) else frame
    del frame
    assert rows is not None
    train_rows = final_window(rows, train_days, cfg.label_horizon)
    context = rows if _context_rows(recipes, cfg) > 1 else None
    del rows  # with no context needed, only the training rows stay
    start: dt.date = train_rows.get_column("session").min()  # type: ignore[assignment]
    end: dt.date = train_rows.get_column("session").max()  # type: ignore[assignment]
    data = fit_data(train_rows, cfg)
    del train_rows  # the fits read the arrays only
    fitted = fit_recipes(data, recipes, cfg)
    refs = {name: reference_frame(fitted, name, context, cfg) for name in fitted.models}
    return FinalFit(dict(fitted.models), refs, start, end)


def final_window_start(labelled_sessions: Sequence[dt.date], train_days: int) -> dt.date:
    """First session of :func:`final_window` given the sessions that have labelled usable rows."""
    if not labelled_sessions:
        raise DataError("no labelled rows outside the warm-up to train on", rule="training_rows")
    days = sorted(labelled_sessions)
    return days[max(len(days) - train_days, 0)]


def reference_frame(
    fitted: FittedSet, name: str, frame: pl.DataFrame | None, cfg: TrainConfig
) -> pl.DataFrame:
    """Drift reference of a final model: its validation rows (unseen by the fit) with its predictions."""
    rows = fitted.val_rows if fitted.val_rows is not None and fitted.val_rows.height else fitted.fit_rows
    assert rows is not None, "fit_data keeps the fitting rows where there are no validation rows"
    p = predict_rows(fitted.models[name], frame, rows, cfg.feature_columns)
    return rows.select("symbol", "session", *cfg.feature_columns).with_columns(pl.Series("prediction", p))
