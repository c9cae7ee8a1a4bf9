"""Session-level statistics on a panel: the shuffled control comes out at chance on a large panel with
market-wide moves, where the old iid-row rule misfires, and a planted leak is still caught.

The synthetic panel: 300 sessions x 400 symbols (120k rows). Each session has a market move m_s that
lifts or sinks every stock (labels of one session move together) and the control's scores share a
session-wide component a_s (a model trained on shuffled labels still reacts to the regime its
features describe). a_s and m_s are independent: the control has no skill. The old rule, pooled ROC
AUC within 3 iid-row standard errors (Hanley-McNeil) of 0.5, sees 120k "independent" rows where there
are about 300 independent sessions, and calls the evaluation leaking most of the time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from stockflow.evaluation import evaluate
from stockflow.evaluation.panel import default_lags, hac_t, newey_west_se, paired_ic_t, session_ic
from stockflow.ml.promotion import control_at_chance

N_SESSIONS, N_SYMBOLS = 300, 400


def _panel(seed: int, leak: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, N_SESSIONS)  # the session's common move
    own = rng.normal(0, 0.02, (N_SESSIONS, N_SYMBOLS))  # each stock's own move
    fwd = market[:, None] + own
    regime = rng.normal(0, 1, N_SESSIONS)  # a session-wide component of the scores
    z = 0.5 * regime[:, None] + rng.normal(0, 0.2, (N_SESSIONS, N_SYMBOLS)) + leak * own / 0.02
    p = 1 / (1 + np.exp(-0.2 * z))
    days = np.datetime64("2020-01-01") + np.arange(N_SESSIONS)
    return {
        "y": (fwd > 0).astype(float).ravel(),
        "p": p.ravel(),
        "fwd": fwd.ravel(),
        "sessions": np.repeat(days, N_SYMBOLS),
        "symbols": np.tile(np.arange(N_SYMBOLS).astype(str), N_SESSIONS),
    }


def old_iid_rule_at_chance(m: dict[str, Any]) -> bool:
    """The rule this project used before: pooled AUC within 3 iid-row (Hanley-McNeil) se of 0.5."""
    n, rate = m["n"], m["base_rate"]
    n_pos, n_neg = rate * n, (1 - rate) * n
    se = math.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg))
    return bool(abs(m["roc_auc"] - 0.5) <= 3 * se)


def _metrics(d: dict[str, Any]) -> dict[str, Any]:
    return evaluate(d["y"], d["p"], d["fwd"], d["sessions"], d["symbols"])


def test_control_without_skill_is_at_chance_where_the_iid_row_rule_misfires() -> None:
    old_misfires, new_misfires = 0, 0
    for seed in range(8):
        m = _metrics(_panel(seed))
        old_misfires += not old_iid_rule_at_chance(m)
        new_misfires += not control_at_chance(m)[0]
    # Measured: the old rule calls a skill-free control "leaking" on 6 of these 8 panels.
    assert old_misfires >= 5
    assert new_misfires <= 1


def test_a_planted_leak_is_caught_at_the_same_size_where_the_iid_row_rule_misses_it() -> None:
    # A small share of each stock's own future move reaches the scores: rank IC ~ 0.04.
    m = _metrics(_panel(seed=3, leak=0.01))
    ok, why = control_at_chance(m)
    assert not ok and "the evaluation leaks" in why
    assert m["ic_t"] > 10 and m["ic_n_sessions"] == N_SESSIONS
    # The pooled AUC drowns the leak in the session-wide component: the old rule saw nothing (0.498).
    assert old_iid_rule_at_chance(m)


def test_newey_west_matches_iid_se_on_white_noise_and_widens_on_autocorrelation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    iid = x.std(ddof=0) / math.sqrt(x.size)
    assert newey_west_se(x, lags=0) == pytest.approx(iid)
    assert newey_west_se(x) == pytest.approx(iid, rel=0.1)
    ar = np.empty(5000)
    ar[0] = 0.0
    for t in range(1, 5000):
        ar[t] = 0.8 * ar[t - 1] + x[t]
    # AR(1) with rho 0.8: the long-run variance is (1+rho)/(1-rho) = 9x the plain one (se 3x).
    ratio = newey_west_se(ar, lags=40) / (ar.std() / math.sqrt(ar.size))
    assert 2.3 < ratio < 3.5
    assert default_lags(300, label_horizon=10) >= 9
    assert hac_t([1.0]) is None


def test_paired_ic_t_compares_sessions_both_have() -> None:
    d = _panel(seed=1, leak=0.05)
    good = session_ic(d["p"], d["fwd"], d["sessions"])
    noise = session_ic(np.random.default_rng(5).normal(size=d["p"].size), d["fwd"], d["sessions"])
    out = paired_ic_t(good, noise)
    assert out["n_sessions"] == N_SESSIONS and out["diff_mean"] > 0.05 and out["diff_t"] > 5
    assert paired_ic_t(noise, good)["diff_t"] < -5
