"""The promotion rule, as a pure function of walk-forward metrics.

A challenger is promoted only when, on the promotion metric, measured on the same out-of-sample folds:

1. the shuffled-label control is at chance (otherwise the evaluation itself leaks and nothing is
   trusted): its per-session rank IC series has a Newey-West |t| below 3 (the session is the unit);
2. it beats every baseline (always-up, yesterday, momentum) strictly;
3. it beats the current champion's recipe, refit on the same folds, by at least ``margin``
   (no champion, or one that could not be evaluated, skips this step).

Among the challengers that pass 1-2 the best on the metric is the candidate. The decision always carries
a reason a person can read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Settings name of a metric -> key in the metrics dict of stockflow.evaluation.evaluate.
METRIC_KEYS = {
    "auc": "roc_auc",
    "ic": "ic_mean",
    "log_loss": "log_loss",
    "brier": "brier",
    "accuracy": "accuracy",
}
LOWER_IS_BETTER = {"log_loss", "brier"}


def metric_value(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    """The value of ``metric`` (settings name) in an evaluate() dict, None when missing or undefined."""
    if not metrics:
        return None
    v = metrics.get(METRIC_KEYS.get(metric, metric))
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def improvement(new: float, old: float, metric: str) -> float:
    """How much better ``new`` is than ``old`` (positive = better) for ``metric``."""
    return old - new if metric in LOWER_IS_BETTER else new - old


#: |Newey-West t| of the shuffled control's per-session rank IC at or above which the evaluation leaks.
CONTROL_T_MAX = 3.0
#: Fewest sessions with a defined IC before the control can be judged.
MIN_CONTROL_SESSIONS = 20


def control_at_chance(metrics: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether the shuffled-label control scored like a coin flip, with the figures.

    The test is on the SESSION: the control's per-session cross-sectional rank IC series must have a
    Newey-West |t| below :data:`CONTROL_T_MAX`. (A pooled AUC against an iid-row standard error is
    not used: a market-wide move makes every row of a session share its label, so on a large panel a
    control with no skill lands "many standard errors" from 0.5; see tests/models/test_panel_stats.py.)
    """
    if not metrics:
        return False, "no shuffled-label control was evaluated"
    n_sess = int(metrics.get("ic_n_sessions") or 0)
    ic, t = metrics.get("ic_mean"), metrics.get("ic_t")
    if n_sess < MIN_CONTROL_SESSIONS or ic is None or t is None or not math.isfinite(t):
        return False, (
            f"shuffled-label control has {n_sess} sessions with a defined cross-sectional IC "
            f"(need {MIN_CONTROL_SESSIONS}): too few to judge whether the evaluation leaks"
        )
    if abs(t) >= CONTROL_T_MAX:
        return False, (
            f"shuffled-label control rank IC {ic:.4f} has a session-level t of {t:.2f} over {n_sess} "
            f"sessions (|t| >= {CONTROL_T_MAX:g}): the evaluation leaks"
        )
    return (
        True,
        f"shuffled-label control at chance (rank IC {ic:.4f}, session-level t {t:.2f}, {n_sess} sessions)",
    )


@dataclass(frozen=True)
class Gate:
    """Whether one challenger beat all baselines (and why not)."""

    passed: bool
    reason: str
    value: float | None


@dataclass(frozen=True)
class Decision:
    """Outcome of a retrain's comparison."""

    promote: bool
    candidate: str | None  # best challenger by the metric (passing the gate when any does)
    reason: str
    metric: str
    gates: dict[str, Gate] = field(default_factory=dict)
    control_ok: bool = True


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def decide(
    metrics: Mapping[str, Mapping[str, Any]],
    *,
    challengers: Sequence[str],
    baselines: Sequence[str],
    control: str | None,
    champion: str | None,
    metric: str,
    margin: float,
) -> Decision:
    """Apply the promotion rule to pooled walk-forward ``metrics`` (name -> evaluate() dict)."""
    ok, control_reason = control_at_chance(metrics.get(control) if control else None)
    gates: dict[str, Gate] = {}
    for name in challengers:
        v = metric_value(metrics.get(name), metric)
        if v is None:
            gates[name] = Gate(False, f"{metric} undefined for {name}", None)
            continue
        losing = []
        for b in baselines:
            bv = metric_value(metrics.get(b), metric)
            if bv is not None and improvement(v, bv, metric) <= 0:
                losing.append(f"{b} {_fmt(bv)}")
        if losing:
            gates[name] = Gate(False, f"{metric} {_fmt(v)} does not beat {', '.join(losing)}", v)
        else:
            gates[name] = Gate(True, f"{metric} {_fmt(v)} beats every baseline", v)

    def best_of(names: list[str]) -> str | None:
        vals = [(n, gates[n].value) for n in names if gates[n].value is not None]
        if not vals:
            return None
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        return max(vals, key=lambda nv: sign * float(nv[1]))[0]  # type: ignore[arg-type]

    passing = [n for n in challengers if gates[n].passed]
    candidate = best_of(passing) or best_of(list(challengers))
    if not ok:
        return Decision(False, candidate, f"nothing promoted: {control_reason}", metric, gates, False)
    if not passing:
        detail = gates[candidate].reason if candidate else "no challenger could be evaluated"
        return Decision(
            False, candidate, f"no challenger beat the baselines (best: {candidate}: {detail})", metric, gates
        )
    assert candidate is not None
    cv = gates[candidate].value
    assert cv is not None
    champ_v = metric_value(metrics.get(champion), metric) if champion else None
    if champion is None or champ_v is None:
        why = "no champion yet" if champion is None else "the champion could not be evaluated on these folds"
        return Decision(
            True, candidate, f"{candidate} promoted: {gates[candidate].reason}; {why}", metric, gates
        )
    gain = improvement(cv, champ_v, metric)
    if gain >= margin:
        return Decision(
            True,
            candidate,
            f"{candidate} promoted: {metric} {_fmt(cv)} beats champion {_fmt(champ_v)} by {gain:.4f} "
            f"(margin {margin}) and every baseline",
            metric,
            gates,
        )
    return Decision(
        False,
        candidate,
        f"champion kept: best challenger {candidate} {metric} {_fmt(cv)} vs champion {_fmt(champ_v)} "
        f"(improvement {gain:.4f} < margin {margin})",
        metric,
        gates,
    )
