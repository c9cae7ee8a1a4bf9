"""Initial and trailing stops (pure, float in/out), shared by the live loop and the backtester.

The arithmetic lives in plain-float functions without checks (:func:`stop_below`, :func:`trail_stop`,
:func:`stop_triggered`, :func:`stop_fill_price`) that the backtest kernel compiles with numba: one
definition for both loops. The public functions validate, then call them."""

from __future__ import annotations


def initial_stop(entry_price: float, stop_loss: float) -> float:
    """Protective stop of a long position: ``stop_loss`` (e.g. 0.03) below the entry price."""
    if entry_price <= 0:
        raise ValueError(f"entry_price must be positive, got {entry_price}")
    if not 0 < stop_loss < 1:
        raise ValueError(f"stop_loss must be in (0, 1), got {stop_loss}")
    return stop_below(entry_price, stop_loss)


def stop_below(entry_price: float, stop_loss: float) -> float:
    """``stop_loss`` below ``entry_price`` (no checks: :func:`initial_stop` is the checked form)."""
    return entry_price * (1.0 - stop_loss)


def update_trailing_stop(
    entry_price: float,
    current_stop: float,
    high_since_entry: float,
    trailing_stop: float,
    trailing_activation: float,
) -> float:
    """The stop after the latest bar: once the high since entry is ``trailing_activation`` (e.g. 5%)
    above the entry, the stop trails ``trailing_stop`` (e.g. 2%) below that high. A stop never moves
    down, and never rises above the high it trails.
    """
    if entry_price <= 0:
        raise ValueError(f"entry_price must be positive, got {entry_price}")
    if not 0 < trailing_stop < 1:
        raise ValueError(f"trailing_stop must be in (0, 1), got {trailing_stop}")
    return trail_stop(entry_price, current_stop, high_since_entry, trailing_stop, trailing_activation)


def trail_stop(
    entry_price: float,
    current_stop: float,
    high_since_entry: float,
    trailing_stop: float,
    trailing_activation: float,
) -> float:
    """The rule of :func:`update_trailing_stop` without its checks."""
    if high_since_entry >= entry_price * (1.0 + trailing_activation):
        return max(current_stop, high_since_entry * (1.0 - trailing_stop))
    return current_stop


def stop_triggered(stop_price: float, low: float) -> bool:
    """True when a bar with this ``low`` reaches a long position's stop."""
    return low <= stop_price


def stop_fill_price(stop_price: float, open_: float) -> float:
    """Fill price of a triggered sell stop: the stop, or the open when the bar gapped through it."""
    return min(stop_price, open_)
