"""Fixed-fractional position sizing, shared by the live loop and the backtester (pure, float in/out)."""

from __future__ import annotations

import math


def _finite_positive(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values)


def position_size(  # noqa: PLR0917 (positional signature is the documented contract)
    equity: float,
    cash: float,
    price: float,
    stop_price: float,
    risk_per_trade: float,
    max_position_weight: float,
) -> int:
    """Whole shares to buy at ``price`` with a protective stop at ``stop_price``.

    The result ``n`` satisfies, evaluated in floating point exactly as written here:

    - ``n >= 0`` (degenerate inputs, e.g. a non-positive price or equity, a stop equal to the price,
      or NaN, give 0);
    - ``n * abs(price - stop_price) <= risk_per_trade * equity`` (loss at the stop within budget);
    - ``n * price <= max_position_weight * equity`` (weight cap);
    - ``n * price <= cash`` (never more than the cash/buying power passed in).

    A stop above the price sizes a short the same way (the distance is what is at risk).
    """
    if not _finite_positive(equity, cash, price, stop_price, risk_per_trade, max_position_weight):
        return 0
    return int(shares_at_risk(equity, cash, price, stop_price, risk_per_trade, max_position_weight))


def shares_at_risk(  # noqa: PLR0917
    equity: float,
    cash: float,
    price: float,
    stop_price: float,
    risk_per_trade: float,
    max_position_weight: float,
) -> int:
    """The arithmetic of :func:`position_size` on floats (no type checks), compiled with numba by the
    backtest kernel: one definition for the live loop and the backtester."""
    for v in (equity, cash, price, stop_price, risk_per_trade, max_position_weight):
        if not (math.isfinite(v) and v > 0):
            return 0
    distance = abs(price - stop_price)
    if not distance > 0:
        return 0
    budget = risk_per_trade * equity
    weight_cap = max_position_weight * equity
    n = min(
        math.floor(budget / distance),
        math.floor(weight_cap / price),
        math.floor(cash / price),
    )
    n = max(n, 0)
    # Division and multiplication round differently: step down until the products really fit.
    while n > 0 and (n * distance > budget or n * price > weight_cap or n * price > cash):
        n -= 1
    return n
