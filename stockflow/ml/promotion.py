"""The promotion rule, as a pure function of walk-forward metrics.

A challenger is promoted only when, on the promotion metric, measured on the same out-of-sample folds:

1. the shuffled-label control is at chance (otherwise the evaluation itself leaks and nothing is
   trusted): its per-session rank IC series has a Newey-West |t| below 3 (the session is the unit);
2. its per-session rank IC beats the momentum and reversal baselines' with a session-level
   (Newey-West) t of at least ``t_min``;
3. its net-of-cost top-k portfolio (the live trade's top_k / hold_buffer / max_changes) beats the
   equal-weight universe (positive excess return and information ratio) and the momentum top-k
   portfolio on both;
4. it beats the current champion's recipe, refit on the same folds, by at least ``margin`` on the
   promotion metric (no champion, or one that could not be evaluated, skips this step).

Among the challengers that pass 2-3 the best on the metric is the candidate. The decision always carries
a reason a person can read, naming the gate that failed and its figures; each gate's figures are kept
on the :class:`Gate` (stored in the registry).
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
    """Whether one challenger passed every gate (and the first reasons why not), with the figures."""

    passed: bool
    reason: str
    value: float | None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionDecision:
    """Outcome of a retrain's comparison."""

    promote: bool
    candidate: str | None  # best challenger by the metric (passing the gates when any does)
    reason: str
    metric: str
    gates: dict[str, Gate] = field(default_factory=dict)
    control_ok: bool = True


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "n/a" if v is None else format(v, spec)


def ic_gate(m: Mapping[str, Any], baselines: Sequence[str], t_min: float) -> tuple[list[str], dict[str, Any]]:
    """Failures and figures of "rank IC beats each baseline's with a session-level t >= t_min"."""
    fails: list[str] = []
    figs: dict[str, Any] = {}
    for b in baselines:
        d = m.get(f"vs_{b}")
        figs[f"ic_vs_{b}"] = d
        if not d or d.get("diff_t") is None:
            fails.append(f"rank IC could not be compared with {b} session by session")
        elif d["diff_mean"] <= 0 or d["diff_t"] < t_min:
            fails.append(
                f"rank IC does not beat {b} with session-level significance "
                f"(difference {_fmt(d['diff_mean'])}, t {d['diff_t']:.2f} < {t_min:g})"
            )
    return fails, figs


def portfolio_gate(
    pf: Mapping[str, Any] | None, bench: Mapping[str, Any] | None, bench_name: str
) -> tuple[list[str], dict[str, Any]]:
    """Failures and figures of "the net-of-cost top-k portfolio beats the equal-weight universe and the
    ``bench_name`` top-k portfolio on excess return and information ratio"."""
    figs = {"portfolio": pf, f"portfolio_{bench_name}": bench}
    if not pf or pf.get("excess_ann") is None or pf.get("ir") is None:
        return ["no net-of-cost top-k portfolio figures (too few sessions or symbols)"], figs
    ex, ir = pf["excess_ann"], pf["ir"]
    k, n = pf.get("top_k"), pf.get("mean_symbols")
    if k is not None and n is not None and n <= k + 0.5:
        return [
            f"the universe ({n:.0f} symbols a session) is not larger than portfolio.top_k ({k}): the top-k "
            "book is the whole universe and cannot beat it; add symbols or lower portfolio.top_k"
        ], figs
    fails = []
    if ex <= 0 or ir <= 0:
        fails.append(
            f"net-of-cost top-k portfolio does not beat the equal-weight universe "
            f"(excess {ex:+.2%}/yr, IR {ir:.2f})"
        )
    if bench and bench.get("excess_ann") is not None:
        bir = bench.get("ir")
        if ex <= bench["excess_ann"] or (bir is not None and ir <= bir):
            fails.append(
                f"net-of-cost top-k portfolio (excess {ex:+.2%}/yr, IR {ir:.2f}) does not beat the "
                f"{bench_name} top-k portfolio (excess {bench['excess_ann']:+.2%}/yr, IR {_fmt(bir, '.2f')})"
            )
    return fails, figs


def decide(
    metrics: Mapping[str, Mapping[str, Any]],
    *,
    challengers: Sequence[str],
    baselines: Sequence[str],
    control: str | None,
    champion: str | None,
    metric: str,
    margin: float,
    ic_baselines: Sequence[str] = ("momentum", "reversal"),
    portfolio_baseline: str = "momentum",
    t_min: float = 2.0,
) -> PromotionDecision:
    """Apply the promotion rule to pooled walk-forward ``metrics`` (name -> evaluate() dict merged with
    :func:`stockflow.evaluation.figures.panel_figures`). ``baselines`` lists the baselines present
    (shown in reasons); ``ic_baselines`` those the rank IC must beat with a session-level t >= ``t_min``;
    ``portfolio_baseline`` the rule whose top-k portfolio must be beaten."""
    ok, control_reason = control_at_chance(metrics.get(control) if control else None)
    gates: dict[str, Gate] = {}
    present_ic = [b for b in ic_baselines if b in metrics]
    bench = (metrics.get(portfolio_baseline) or {}).get("portfolio")
    for name in challengers:
        m = metrics.get(name) or {}
        v = metric_value(m, metric)
        ic_fails, ic_figs = ic_gate(m, present_ic, t_min)
        pf_fails, pf_figs = portfolio_gate(m.get("portfolio"), bench, portfolio_baseline)
        figures = {metric: v, "ic_mean": m.get("ic_mean"), "ic_t": m.get("ic_t"), **ic_figs, **pf_figs}
        fails = ([f"{metric} undefined"] if v is None else []) + ic_fails + pf_fails
        if fails:
            gates[name] = Gate(False, "; ".join(fails), v, figures)
        else:
            pf = m["portfolio"]
            gates[name] = Gate(
                True,
                f"rank IC {_fmt(m.get('ic_mean'))} beats {' and '.join(present_ic) or 'no baseline'} "
                f"(session-level t >= {t_min:g}); net-of-cost top-k excess {pf['excess_ann']:+.2%}/yr, "
                f"IR {pf['ir']:.2f} beat the equal-weight universe and the {portfolio_baseline} top-k",
                v,
                figures,
            )

    def best_of(names: list[str]) -> str | None:
        vals = [(n, gates[n].value) for n in names if gates[n].value is not None]
        if not vals:
            return None
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        return max(vals, key=lambda nv: sign * float(nv[1]))[0]  # type: ignore[arg-type]

    passing = [n for n in challengers if gates[n].passed]
    candidate = best_of(passing) or best_of(list(challengers))
    if not ok:
        return PromotionDecision(
            False, candidate, f"nothing promoted: {control_reason}", metric, gates, False
        )
    if not passing:
        detail = gates[candidate].reason if candidate else "no challenger could be evaluated"
        return PromotionDecision(
            False, candidate, f"nothing promoted: best challenger {candidate} failed: {detail}", metric, gates
        )
    assert candidate is not None
    cv = gates[candidate].value
    assert cv is not None
    champ_v = metric_value(metrics.get(champion), metric) if champion else None
    if champion is None or champ_v is None:
        why = "no champion yet" if champion is None else "the champion could not be evaluated on these folds"
        return PromotionDecision(
            True, candidate, f"{candidate} promoted: {gates[candidate].reason}; {why}", metric, gates
        )
    gain = improvement(cv, champ_v, metric)
    if gain >= margin:
        return PromotionDecision(
            True,
            candidate,
            f"{candidate} promoted: {metric} {_fmt(cv)} beats champion {_fmt(champ_v)} by {gain:.4f} "
            f"(margin {margin}); {gates[candidate].reason}",
            metric,
            gates,
        )
    return PromotionDecision(
        False,
        candidate,
        f"champion kept: best challenger {candidate} {metric} {_fmt(cv)} vs champion {_fmt(champ_v)} "
        f"(improvement {gain:.4f} < margin {margin})",
        metric,
        gates,
    )
