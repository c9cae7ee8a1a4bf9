"""Trading modes: which of the target book's orders go out on their own and which wait for a person.

The orders are the difference between the target book and the current one (exits first), already
sized and checked by risk. Then:

- ``auto``: every order is sent. No person involved.
- ``manual``: every order needs approval.
- ``hybrid``: an order needs approval when the model is unsure about it (its P(outperform), the one
  meaning of confidence, lies in ``[portfolio.approval_band_low, portfolio.approval_band_high]``) or
  when it is large (notional above ``portfolio.approval_notional``); the rest are sent.

A holding that leaves without a score this session (no bar, too little history) has no view: it counts
as P(outperform) 0.5. A symbol with no order (kept, not in the top k, or no room left) is ``ignored``
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stockflow.choices import TRADE_MODES, TradeMode
from stockflow.config.sections import PortfolioSettings
from stockflow.errors import ConfigError
from stockflow.pipeline.signals import Signal


class Route(StrEnum):
    """Where a signal's order goes."""

    AUTO = "auto"
    APPROVAL = "approval"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Routed:
    """A signal with its route and why."""

    signal: Signal
    route: Route
    reason_code: str
    reason: str


def check_mode(mode: str) -> TradeMode:
    """``mode`` if it is one of auto/manual/hybrid, else a :class:`ConfigError` listing them."""
    if mode not in TRADE_MODES:
        raise ConfigError(f"unknown trading mode {mode!r}; expected one of {', '.join(TRADE_MODES)}")
    return mode  # type: ignore[return-value]


def route_order(signal: Signal, notional: float, mode: TradeMode, settings: PortfolioSettings) -> Routed:
    """The route of the order ``signal`` became (``notional`` = qty x reference price) under ``mode``."""
    p = signal.confidence
    lo, hi, big = settings.approval_band_low, settings.approval_band_high, settings.approval_notional
    if mode == "auto":
        return Routed(signal, Route.AUTO, "mode:auto", "auto mode: the target book's orders are sent")
    if mode == "manual":
        return Routed(signal, Route.APPROVAL, "mode:manual", "manual mode: every order needs approval")
    why: list[str] = []
    if lo <= p <= hi:
        why.append(f"P(outperform) {p:.3f} in the approval band [{lo}, {hi}]")
    if big is not None and notional > big:
        why.append(f"notional ${notional:,.2f} above ${big:,.2f}")
    if why:
        return Routed(signal, Route.APPROVAL, "mode:hybrid_approval", "; ".join(why) + ": needs approval")
    return Routed(
        signal, Route.AUTO, "mode:hybrid_auto", f"P(outperform) {p:.3f} outside [{lo}, {hi}], notional small"
    )


def ignored(signal: Signal, reason_code: str, reason: str) -> Routed:
    """A signal without an order."""
    return Routed(signal, Route.IGNORED, reason_code, reason)
