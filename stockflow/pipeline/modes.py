"""Trading modes: which signals trade on their own, which wait for a person, which are ignored.

- ``auto``: every BUY/SELL signal whose confidence reaches ``trading.auto_threshold`` trades (after
  risk); the rest are ignored. No person involved.
- ``manual``: every order needs approval: BUY/SELL signals whose confidence reaches
  ``trading.approval_threshold`` are proposed; the rest are ignored.
- ``hybrid``: confidence >= ``auto_threshold`` trades on its own; ``approval_threshold`` <= confidence
  < ``auto_threshold`` waits for approval; below is ignored.

Exits (a SELL that closes a held long because P(up) fell below ``trading.exit_threshold``) reduce risk:
they trade on their own in ``auto`` and ``hybrid`` whatever their confidence (as the backtester exits),
and need approval in ``manual`` like every order. HOLD is always ignored.
These are the same thresholds the backtester applies (auto -> auto_threshold, approve-all ->
approval_threshold), so a backtest of the ML strategy matches what the live loop would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from stockflow.config.sections import TradingSettings
from stockflow.errors import ConfigError
from stockflow.pipeline.signals import Action, Signal

Mode = Literal["auto", "manual", "hybrid"]
MODES: tuple[str, ...] = ("auto", "manual", "hybrid")


class Route(StrEnum):
    """Where a signal goes."""

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


def check_mode(mode: str) -> Mode:
    """``mode`` if it is one of auto/manual/hybrid, else a :class:`ConfigError` listing them."""
    if mode not in MODES:
        raise ConfigError(f"unknown trading mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def route_signal(signal: Signal, mode: Mode, settings: TradingSettings) -> Routed:
    """The route of one signal under ``mode`` and the thresholds in ``settings``."""
    hi, mid = settings.auto_threshold, settings.approval_threshold
    c = signal.confidence
    if signal.action is Action.HOLD:
        return Routed(signal, Route.IGNORED, "mode:hold", "HOLD: nothing to do")
    if signal.is_exit:
        if mode == "manual":
            return Routed(signal, Route.APPROVAL, "mode:manual", "manual mode: every order needs approval")
        return Routed(signal, Route.AUTO, "mode:exit", f"exit: P(up) below {settings.exit_threshold}")
    if mode == "auto":
        if c >= hi:
            return Routed(signal, Route.AUTO, "mode:auto", f"confidence {c:.3f} >= auto threshold {hi}")
        return Routed(
            signal, Route.IGNORED, "mode:below_threshold", f"confidence {c:.3f} < auto threshold {hi}"
        )
    if mode == "manual":
        if c >= mid:
            return Routed(signal, Route.APPROVAL, "mode:manual", f"manual mode: confidence {c:.3f} >= {mid}")
        return Routed(
            signal, Route.IGNORED, "mode:below_threshold", f"confidence {c:.3f} < approval threshold {mid}"
        )
    if c >= hi:
        return Routed(signal, Route.AUTO, "mode:hybrid_auto", f"confidence {c:.3f} >= auto threshold {hi}")
    if c >= mid:
        return Routed(
            signal,
            Route.APPROVAL,
            "mode:hybrid_approval",
            f"confidence {c:.3f} in [{mid}, {hi}): needs approval",
        )
    return Routed(
        signal, Route.IGNORED, "mode:below_threshold", f"confidence {c:.3f} < approval threshold {mid}"
    )


def route_signals(signals: list[Signal], mode: str, settings: TradingSettings) -> list[Routed]:
    """Route every signal (see the module docstring)."""
    m = check_mode(mode)
    return [route_signal(s, m, settings) for s in signals]
