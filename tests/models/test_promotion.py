"""The promotion rule on hand-made metrics: baselines, champion margin, and the shuffled-label control."""

from __future__ import annotations

from typing import Any

import pytest

from stockflow.promotion import control_at_chance, decide

BASE = ("always_up", "yesterday", "momentum")


def _m(auc: float | None, *, log_loss: float = 0.693, n: int = 2000, rate: float = 0.53) -> dict[str, Any]:
    return {"roc_auc": auc, "log_loss": log_loss, "n": n, "base_rate": rate, "ic_t": 0.1}


def _metrics(**models: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {"always_up": _m(0.5, log_loss=0.691), "yesterday": _m(0.51), "momentum": _m(0.52, log_loss=0.690)}
    out["shuffled_control(lightgbm)"] = _m(0.505)
    out.update(models)
    return out


def _decide(metrics: dict[str, dict[str, Any]], champion: str | None = None, **kw: Any) -> Any:
    args: dict[str, Any] = {"metric": "auc", "margin": 0.005, **kw}
    challengers = [n for n in metrics if n not in BASE and not n.startswith(("shuffled", "champion"))]
    return decide(
        metrics, challengers=challengers, baselines=list(BASE), control="shuffled_control(lightgbm)",
        champion=champion, **args,
    )  # fmt: skip


def test_worse_than_a_baseline_is_not_promoted() -> None:
    d = _decide(_metrics(lightgbm=_m(0.515)))
    assert not d.promote and d.candidate == "lightgbm"
    assert "does not beat momentum 0.5200" in d.reason and not d.gates["lightgbm"].passed


def test_better_than_baselines_without_champion_is_promoted() -> None:
    d = _decide(_metrics(lightgbm=_m(0.53), lstm=_m(0.54)))
    assert d.promote and d.candidate == "lstm" and "no champion yet" in d.reason


def test_best_passing_challenger_wins_even_if_a_failing_one_scores_higher_elsewhere() -> None:
    d = _decide(_metrics(lightgbm=_m(0.53), lstm=_m(None)))
    assert d.promote and d.candidate == "lightgbm" and not d.gates["lstm"].passed


@pytest.mark.parametrize(("champ_auc", "promoted"), [(0.526, False), (0.5249, True), (0.52, True)])
def test_champion_margin_is_respected(champ_auc: float, promoted: bool) -> None:
    d = _decide(_metrics(lightgbm=_m(0.53), **{"champion[v1]": _m(champ_auc)}), champion="champion[v1]")
    assert d.promote is promoted
    if not promoted:
        assert "champion kept" in d.reason and "< margin 0.005" in d.reason


def test_lower_is_better_metric() -> None:
    metrics = _metrics(lightgbm=_m(0.6, log_loss=0.6895), **{"champion[v1]": _m(0.6, log_loss=0.6899)})
    kept = _decide(metrics, champion="champion[v1]", metric="log_loss", margin=0.001)
    assert not kept.promote and "improvement 0.0004" in kept.reason
    assert _decide(metrics, champion="champion[v1]", metric="log_loss", margin=0.0001).promote


def test_a_leaking_control_blocks_every_promotion() -> None:
    metrics = _metrics(lightgbm=_m(0.6))
    metrics["shuffled_control(lightgbm)"] = _m(0.58)
    d = _decide(metrics)
    assert not d.promote and not d.control_ok and "evaluation leaks" in d.reason


def test_control_chance_band_scales_with_rows() -> None:
    assert control_at_chance(_m(0.52, n=2000))[0]  # 3 se ~ 0.039 at 2000 rows
    assert not control_at_chance(_m(0.52, n=200_000))[0]  # 3 se ~ 0.004: 0.52 is a leak
    assert not control_at_chance(None)[0]
