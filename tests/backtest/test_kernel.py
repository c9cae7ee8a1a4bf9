"""The numba session loop against the previous numpy loop (tests/backtest/reference_engine.py) on random
panels, signals, costs and limits: the same fills (bit for bit), the same cash, the same equity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.backtest import kernel
from stockflow.backtest.config import BacktestConfig, Costs
from stockflow.backtest.engine import simulate
from stockflow.backtest.kernel import npsum
from stockflow.backtest.panel import NO_OPINION, Panel, SignalPanel
from tests.backtest.reference_engine import reference_simulate


def _panel(rng: np.random.Generator, n_sessions: int, n_symbols: int, holes: float) -> Panel:
    shape = (n_sessions, n_symbols)
    close = rng.uniform(5, 200, n_symbols) * np.exp(np.cumsum(rng.normal(0, 0.03, shape), axis=0))
    opn = close * np.exp(rng.normal(0, 0.02, shape))
    high = np.maximum(opn, close) * (1 + np.abs(rng.normal(0, 0.02, shape)))
    low = np.minimum(opn, close) * (1 - np.abs(rng.normal(0, 0.02, shape)))
    gone = rng.random(shape) < holes
    for a in (opn, high, low, close):
        a[gone] = np.nan
    sessions = np.datetime64("2020-01-01") + np.arange(n_sessions)
    syms = tuple(f"S{i:03d}" for i in range(n_symbols))
    return Panel(sessions, syms, opn, high, low, close, ~gone)


def _signals(rng: np.random.Generator, shape: tuple[int, int]) -> SignalPanel:
    target = rng.choice(np.array([NO_OPINION, -1, 0, 1], dtype=np.int8), shape, p=[0.5, 0.1, 0.15, 0.25])
    # Ties in strength on purpose (rank order then falls back to the symbol).
    strength = np.round(rng.random(shape), 1)
    size = np.where(rng.random(shape) < 0.3, rng.random(shape), 1.0)
    entry = (target == 1) & (rng.random(shape) < 0.8)
    return SignalPanel(target, strength, size, entry)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n_sessions=st.integers(1, 60),
    n_symbols=st.integers(1, 40),
    holes=st.sampled_from([0.0, 0.05, 0.3]),
    risk=st.booleans(),
    stops=st.booleans(),
    trailing=st.sampled_from([None, 0.02, 0.1]),
    tick=st.sampled_from([None, 0.01, 0.05]),
    max_open=st.sampled_from([None, 1, 3, 12]),
    max_orders=st.sampled_from([None, 1, 4]),
    exposure=st.sampled_from([None, 0.3, 1.0, 3.0]),
    cash=st.sampled_from([2_000.0, 10_000.0, 1_000_000.0]),
    costs=st.tuples(st.floats(0, 50), st.floats(0, 0.05), st.floats(0, 5), st.floats(0, 0.005)),
    close_at_end=st.booleans(),
)
def test_kernel_equals_the_numpy_loop(  # noqa: PLR0917 - hypothesis passes the drawn values by name
    seed: int,
    n_sessions: int,
    n_symbols: int,
    holes: float,
    risk: bool,
    stops: bool,
    trailing: float | None,
    tick: float | None,
    max_open: int | None,
    max_orders: int | None,
    exposure: float | None,
    cash: float,
    costs: tuple[float, float, float, float],
    close_at_end: bool,
) -> None:
    rng = np.random.default_rng(seed)
    panel = _panel(rng, n_sessions, n_symbols, holes)
    sig = _signals(rng, panel.shape)
    cfg = BacktestConfig(
        initial_cash=cash,
        costs=Costs(*costs),
        sizing="risk" if risk else "fixed_notional",
        fixed_notional=None if risk else cash / 7,
        risk_per_trade=0.02,
        max_position_weight=0.3,
        max_total_exposure=exposure,
        max_open_positions=max_open,
        max_orders_per_session=max_orders,
        min_order_notional=50.0,
        use_stops=stops,
        trailing_stop=trailing,
        stop_tick=tick,
        close_at_end=close_at_end,
    )
    new, old = simulate(panel, sig, cfg), reference_simulate(panel, sig, cfg)
    assert set(new) == set(old)
    for k in ("t", "sym", "side", "qty", "price", "ref", "commission", "reason", "cash", "n_positions"):
        assert new[k].dtype == old[k].dtype, k
        np.testing.assert_array_equal(new[k], old[k], err_msg=k)
    # Positions are valued with a dot product whose summation order is the BLAS library's own.
    for k in ("equity", "positions_value"):
        np.testing.assert_allclose(new[k], old[k], rtol=1e-13, atol=1e-9, err_msg=k)


def test_npsum_is_numpy_sum() -> None:
    rng = np.random.default_rng(3)
    for n in [*range(1, 140), 255, 256, 257, 488, 1000, 5003]:
        a = rng.normal(size=n) * 10.0 ** rng.integers(-3, 7)
        assert npsum(a, n) == a.sum(), n


def test_read_only_arrays_use_the_compiled_kernel() -> None:
    """A panel that arrives read-only (as Dask delivers arrays built on another worker) runs on the kernel
    already compiled for writeable arrays: no second compilation (it cost ~40 s per worker), same result."""
    rng = np.random.default_rng(3)
    panel, sig = _panel(rng, 40, 6, 0.05), _signals(rng, (40, 6))
    config = BacktestConfig(costs=Costs(slippage_bps=5, commission_per_share=0.005))
    before = simulate(panel, sig, config)
    compiled = list(kernel.run_sessions.signatures)
    for a in (panel.open, panel.high, panel.low, panel.close, panel.valid, *vars(sig).values()):
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    after = simulate(panel, sig, config)
    assert list(kernel.run_sessions.signatures) == compiled
    for key in ("t", "sym", "qty", "price", "equity"):
        np.testing.assert_array_equal(before[key], after[key])
