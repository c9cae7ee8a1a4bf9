"""The walk-forward split into units of one model kind on one fold, run on any executor, and merged back
into exactly the frame the in-process path builds (same rows, same order), so metrics, the promotion
decision and the registry rows do not depend on where the units ran.

A unit is ``fold_predictions`` (stockflow.ml.training) called with a subset of the recipes:

- each recipe is its own unit, except that an ensemble joins the unit of the member recipes it reuses
  (its weights come from those very fits; refitting them elsewhere would double the work);
- the shuffled-label control goes with the first recipe of its learner (its parameters are that
  recipe's, as in-process), else with the first unit; the baselines come from that same unit only.

Each fold's rows are sliced once (the fold's sessions and a margin before them: all that the fit, the
purged split and sequence context read) and scattered to the cluster once, shared by its units. When the
features are in the chunked store (``PreparedData.store``: a retrain on a cluster), no rows travel at all:
each unit gets the store's file paths and the session bounds, and reads those rows on its worker.

The final fits (:meth:`UnitRunner.final`) are split the same way: one unit per recipe group, each reading
the final window from the store, returning the fitted models and their drift references only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from stockflow.features.parquet import ChunkStore, StoredSlice
from stockflow.ml.training import (
    CONTEXT_MARGIN_SESSIONS,
    FinalFit,
    Recipe,
    TrainConfig,
    final_fit,
    final_window_start,
    fold_predictions,
    window_bounds,
)

if TYPE_CHECKING:
    from stockflow.compute.executor import Executor
    from stockflow.evaluation import Fold


@dataclass(frozen=True)
class UnitSpec:
    """Which recipes one unit fits and scores, and whether it adds the control and the baselines."""

    names: tuple[str, ...]
    control: bool
    baselines: bool

    def __str__(self) -> str:
        extra = "+control" if self.control else ""
        return "+".join(self.names) + extra


def plan_units(recipes: Mapping[str, Recipe], control_kind: str) -> list[UnitSpec]:
    """Units of one fold (see the module docstring), in the recipes' order."""
    names = list(recipes)
    group: dict[str, int] = {n: i for i, n in enumerate(names)}

    def join(a: str, b: str) -> None:
        ga, gb = group[a], group[b]
        for n, g in group.items():
            if g == gb:
                group[n] = ga

    plain = [n for n in names if recipes[n].kind != "ensemble"]
    for n in names:
        r = recipes[n]
        if r.kind != "ensemble":
            continue
        for kind, params in dict(r.params.get("members") or {}).items():
            want = Recipe(kind, params)
            for m in plain:
                if recipes[m].same_as(want):
                    join(n, m)
    order: list[int] = list(dict.fromkeys(group[n] for n in names))
    members = {g: tuple(n for n in names if group[n] == g) for g in order}
    first_ctl = next((n for n in names if recipes[n].kind == control_kind), None)
    ctl_group = group[first_ctl] if first_ctl is not None else (order[0] if order else None)
    specs = [UnitSpec(members[g], control=g == ctl_group, baselines=g == ctl_group) for g in order]
    return specs or [UnitSpec((), control=True, baselines=True)]


def run_unit(
    frame: pl.DataFrame | StoredSlice,
    fold: Fold,
    *,
    recipes: Mapping[str, Recipe],
    cfg: TrainConfig,
    aliases: Mapping[str, str],
    spec: UnitSpec,
) -> pl.DataFrame:
    """Predictions of one unit on one fold: a plain function of a frame or of stored rows it reads here
    (no database)."""
    # Stored rows: fold_predictions reads them itself and frees them when no model needs them.
    rows = frame.load if isinstance(frame, StoredSlice) else frame
    del frame
    subset = {n: recipes[n] for n in spec.names}
    out = fold_predictions(rows, fold, subset, cfg, aliases=aliases, control=spec.control)
    if out.is_empty() or spec.baselines:
        return out
    return out.filter(pl.col("kind") != "baseline")


def in_process_order(recipes: Mapping[str, Recipe], aliases: Mapping[str, str]) -> list[str]:
    """Model names in the order ``fold_predictions`` emits them for all recipes at once: plain recipes,
    then ensembles, each followed by its aliases (control and baselines come after, by kind)."""
    fitted = [n for n, r in recipes.items() if r.kind != "ensemble"]
    fitted += [n for n, r in recipes.items() if r.kind == "ensemble"]
    out: list[str] = []
    for n in fitted:
        out.append(n)
        out.extend(a for a, t in aliases.items() if t == n)
    return out


def merge_fold(parts: Sequence[pl.DataFrame], order: Sequence[str]) -> pl.DataFrame:
    """One fold's unit outputs as the in-process frame: models in ``order``, then controls, then
    baselines (each model's rows keep their order: the test rows by symbol and session)."""
    parts = [p for p in parts if not p.is_empty()]
    if not parts:
        return pl.DataFrame()
    allrows = pl.concat(parts)
    by_model: dict[str, pl.DataFrame] = {
        str(k[0]): v for k, v in allrows.partition_by("model", maintain_order=True, as_dict=True).items()
    }
    kinds = {m: f.get_column("kind")[0] for m, f in by_model.items()}
    rank = {"model": 0, "control": 1, "baseline": 2}
    seen = [m for m in order if m in by_model]
    rest = sorted(
        (m for m in by_model if m not in seen),
        key=lambda m: (rank.get(kinds[m], 3), list(by_model).index(m)),
    )
    return pl.concat([by_model[m] for m in [*seen, *rest]])


def fold_slice(frame: pl.DataFrame, fold: Fold, margin: int = CONTEXT_MARGIN_SESSIONS) -> pl.DataFrame:
    """Rows of the sessions a fold reads: ``margin`` sessions before its training window to its last test
    session (whole sessions, so cross-sectional columns are unchanged)."""
    sessions = frame.get_column("session").unique().sort()
    lo, _ = window_bounds(sessions, fold.train_start, fold.test_end, margin)
    return frame.filter((pl.col("session") >= lo) & (pl.col("session") <= fold.test_end))


@dataclass
class UnitRunner:
    """A ``FoldRunner`` (stockflow.ml.retrain) that submits one unit per (model kind, fold) to an executor.

    ``unit_task`` is the Prefect task wrapping :func:`run_unit` (tasks/compute.py) or the function itself.
    Jobs that are not a ``FoldJob`` run per fold, whole.
    """

    executor: Executor
    unit_task: Any = run_unit
    final_task: Any = None  # the Prefect task wrapping run_final_unit (None: the function itself)

    def __call__(self, fn: Callable[[Fold], pl.DataFrame], folds: Sequence[Fold]) -> list[pl.DataFrame]:
        from stockflow.ml.retrain_data import FoldJob

        if not isinstance(fn, FoldJob):
            handles = [self.executor.submit(fn, {"fold": f}) for f in folds]
            return [h.result() for h in handles]
        specs = plan_units(fn.recipes, fn.cfg.control_kind)
        order = in_process_order(fn.recipes, fn.aliases)
        submitted: list[list[Any]] = []
        sessions = fn.store.sessions() if fn.store is not None else None
        for fold in folds:
            ref: Any
            if fn.store is not None and sessions is not None:
                ref = StoredSlice(fn.store, *window_bounds(sessions, fold.train_start, fold.test_end))
            elif fn.frame is not None:
                rows = fn.frame if not self.executor.distributed else fold_slice(fn.frame, fold)
                ref = self.executor.scatter(rows)
            else:  # pragma: no cover - FoldJob holds one or the other
                raise ValueError("a FoldJob without frame or store")
            submitted.append(
                [
                    self.executor.submit(
                        self.unit_task,
                        {
                            "frame": ref,
                            "fold": fold,
                            "recipes": fn.recipes,
                            "cfg": fn.cfg,
                            "aliases": fn.aliases,
                            "spec": spec,
                        },
                    )
                    for spec in specs
                ]
            )
        return [merge_fold([h.result() for h in hs], order) for hs in submitted]

    def final(
        self,
        source: pl.DataFrame | ChunkStore,
        recipes: Mapping[str, Recipe],
        cfg: TrainConfig,
        train_days: int,
    ) -> FinalFit:
        """Final fits, one unit per recipe group (an ensemble with its members), merged in the order
        one call of ``final_fit`` with every recipe gives."""
        if isinstance(source, ChunkStore):
            start = final_window_start(source.labelled_sessions(), train_days)
            sessions = source.sessions()
            ref: Any = StoredSlice(source, *window_bounds(sessions, start, sessions[-1]))
        else:
            ref = self.executor.scatter(source)
        specs = [s for s in plan_units(recipes, cfg.control_kind) if s.names]
        handles = [
            self.executor.submit(
                self.final_task or run_final_unit,
                {
                    "frame": ref,
                    "recipes": {n: recipes[n] for n in s.names},
                    "cfg": cfg,
                    "train_days": train_days,
                    "unit": "+".join(s.names),
                },
            )
            for s in specs
        ]
        fits: list[FinalFit] = [h.result() for h in handles]
        models = {n: m for f in fits for n, m in f.models.items()}
        refs = {n: r for f in fits for n, r in f.references.items()}
        order = in_process_order(recipes, {})
        return FinalFit(
            {n: models[n] for n in order if n in models},
            {n: refs[n] for n in order if n in refs},
            fits[0].train_start,
            fits[0].train_end,
        )


def run_final_unit(
    frame: pl.DataFrame | StoredSlice,
    *,
    recipes: Mapping[str, Recipe],
    cfg: TrainConfig,
    train_days: int,
    unit: str = "",
) -> FinalFit:
    """Final models of one recipe group with their drift references (reads stored rows here). ``unit``
    names the group (the task run's name)."""
    # Stored rows: final_fit reads them itself and frees them once the training arrays are built.
    return final_fit(frame.load if isinstance(frame, StoredSlice) else frame, recipes, cfg, train_days)
