"""The promotion rule on hand-made figures: control at chance, IC significance over the momentum and
reversal baselines, the net-of-cost top-k portfolio, the champion margin, and readable reasons."""

from __future__ import annotations

from typing import Any

import pytest

from stockflow.ml.promotion import control_at_chance, decide

BASE = ("always_up", "yesterday", "momentum", "reversal")
CONTROL = "shuffled_control(lightgbm)"


def _pf(excess: float, ir: float) -> dict[str, Any]:
    return {"excess_ann": excess, "ir": ir, "max_drawdown": -0.05, "turnover": 0.2}


def _m(
    ic: float | None = 0.03,
    *,
    t_mom: float = 3.0,
    t_rev: float = 3.0,
    pf: tuple[float, float] = (0.05, 0.8),
    log_loss: float = 0.693,
) -> dict[str, Any]:
    """Figures of a challenger: rank IC, its session-level edge over each baseline, its portfolio."""
    return {
        "ic_mean": ic,
        "ic_t": 4.0,
        "ic_n_sessions": 250,
        "log_loss": log_loss,
        "vs_momentum": {"diff_mean": 0.02, "diff_t": t_mom, "n_sessions": 250},
        "vs_reversal": {"diff_mean": 0.02, "diff_t": t_rev, "n_sessions": 250},
        "portfolio": _pf(*pf),
    }


def _control(ic: float = 0.001, t: float = 0.4, n: int = 250) -> dict[str, Any]:
    return {"ic_mean": ic, "ic_t": t, "ic_n_sessions": n}


def _metrics(**models: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {b: {"ic_mean": 0.01, "ic_t": 1.0} for b in BASE}
    out["momentum"]["portfolio"] = _pf(0.01, 0.2)
    out[CONTROL] = _control()
    out.update(models)
    return out


def _decide(metrics: dict[str, dict[str, Any]], champion: str | None = None, **kw: Any) -> Any:
    args: dict[str, Any] = {"metric": "ic", "margin": 0.005, **kw}
    challengers = [n for n in metrics if n not in BASE and not n.startswith(("shuffled", "champion"))]
    return decide(
        metrics, challengers=challengers, baselines=list(BASE), control=CONTROL, champion=champion, **args
    )


def test_every_gate_passed_without_champion_promotes_the_best_and_keeps_the_figures() -> None:
    d = _decide(_metrics(lightgbm=_m(0.03), lstm=_m(0.04)))
    assert d.promote and d.candidate == "lstm" and "no champion yet" in d.reason
    figs = d.gates["lstm"].figures
    assert figs["ic_vs_momentum"]["diff_t"] == 3.0 and figs["portfolio"]["ir"] == 0.8
    assert figs["portfolio_momentum"]["excess_ann"] == 0.01


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (_m(t_mom=1.5), "does not beat momentum with session-level significance"),
        (_m(t_rev=-0.2), "does not beat reversal with session-level significance"),
        (_m(pf=(-0.01, -0.1)), "does not beat the equal-weight universe"),
        (_m(pf=(0.008, 0.5)), "does not beat the momentum top-k portfolio"),
        (_m(pf=(0.02, 0.1)), "does not beat the momentum top-k portfolio"),  # more excess, lower IR
    ],
    ids=["ic_momentum", "ic_reversal", "vs_equal_weight", "vs_momentum_excess", "vs_momentum_ir"],
)
def test_each_gate_refuses_with_its_own_reason(model: dict[str, Any], words: str) -> None:
    d = _decide(_metrics(lightgbm=model))
    assert not d.promote and not d.gates["lightgbm"].passed
    assert d.reason.startswith("nothing promoted: best challenger lightgbm failed: ") and words in d.reason
    assert "beats" not in d.reason  # a refusal never reads like a success


def test_a_passing_challenger_wins_over_a_failing_one_with_a_better_metric() -> None:
    d = _decide(_metrics(lightgbm=_m(0.03), lstm=_m(0.05, t_mom=0.5)))
    assert d.promote and d.candidate == "lightgbm" and not d.gates["lstm"].passed


@pytest.mark.parametrize(("champ_ic", "promoted"), [(0.026, False), (0.0249, True), (0.01, True)])
def test_champion_margin_is_respected(champ_ic: float, promoted: bool) -> None:
    d = _decide(_metrics(lightgbm=_m(0.03), **{"champion[v1]": _m(champ_ic)}), champion="champion[v1]")
    assert d.promote is promoted
    if not promoted:
        assert "champion kept" in d.reason and "< margin 0.005" in d.reason


def test_lower_is_better_metric() -> None:
    metrics = _metrics(lightgbm=_m(log_loss=0.6895), **{"champion[v1]": _m(log_loss=0.6899)})
    kept = _decide(metrics, champion="champion[v1]", metric="log_loss", margin=0.001)
    assert not kept.promote and "improvement 0.0004" in kept.reason
    assert _decide(metrics, champion="champion[v1]", metric="log_loss", margin=0.0001).promote


def test_a_leaking_control_blocks_every_promotion_and_says_so_first() -> None:
    metrics = _metrics(lightgbm=_m(0.05))
    metrics[CONTROL] = _control(ic=0.02, t=5.1)
    d = _decide(metrics)
    assert not d.promote and not d.control_ok
    assert d.reason.startswith(
        "nothing promoted: shuffled-label control rank IC 0.0200 has a session-level t"
    )
    assert "the evaluation leaks" in d.reason


def test_control_needs_enough_sessions_and_a_small_session_level_t() -> None:
    assert control_at_chance(_control(t=2.9))[0]
    assert not control_at_chance(_control(t=-3.2))[0]
    ok, why = control_at_chance(_control(n=5))
    assert not ok and "too few to judge" in why
    assert not control_at_chance(None)[0]


def test_a_universe_no_larger_than_top_k_is_refused_with_that_reason() -> None:
    small = _m()
    small["portfolio"] = {**_pf(-0.0002, -0.7), "top_k": 10, "mean_symbols": 4.0}
    d = _decide(_metrics(lightgbm=small))
    assert not d.promote and "the universe (4 symbols a session) is not larger than portfolio.top_k (10)" in (
        d.reason
    )
    assert "momentum top-k" not in d.reason
