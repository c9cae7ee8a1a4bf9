"""What a backtest is run with: trading costs and the engine configuration (immutable, validated).

Every check raises :class:`~stockflow.errors.ConfigError` naming the parameter, so that a bad value
from the CLI, a flow parameter or ``stockflow.yaml`` is fixed at its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from stockflow.errors import ConfigError

if TYPE_CHECKING:
    from stockflow.config import Settings

Sizing = Literal["risk", "fixed_notional"]


def _check_non_negative(prefix: str, **values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{prefix}.{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class Costs:
    """Trading costs applied to every fill.

    Same rules as the paper broker (``stockflow.brokers.paper``): ``slippage_bps`` moves the fill price
    against the order (buys pay ``price * (1 + bps/1e4)``, sells get ``price * (1 - bps/1e4)``), and the
    commission of a fill is ``commission_per_order + commission_per_share * qty + commission_pct *
    qty * fill_price`` (``commission_pct`` is a fraction of the notional, as in ``settings.broker``:
    0.001 = 0.1 %).
    """

    slippage_bps: float = 0.0
    commission_per_share: float = 0.0
    commission_per_order: float = 0.0
    commission_pct: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative(
            "costs",
            slippage_bps=self.slippage_bps,
            commission_per_share=self.commission_per_share,
            commission_per_order=self.commission_per_order,
            commission_pct=self.commission_pct,
        )
        if self.slippage_bps >= 10_000:
            raise ConfigError(f"costs.slippage_bps must be below 10000, got {self.slippage_bps}")
        if self.commission_pct >= 1:
            raise ConfigError(
                f"costs.commission_pct is a fraction of the notional and must be < 1, got "
                f"{self.commission_pct}"
            )

    @classmethod
    def none(cls) -> Costs:
        """No slippage and no commission (the 'costs off' column of the comparison)."""
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings) -> Costs:
        """The costs the paper broker charges (``settings.broker``)."""
        b = settings.broker
        return cls(
            slippage_bps=b.slippage_bps,
            commission_per_share=b.commission_per_share,
            commission_per_order=b.commission_per_order,
            commission_pct=b.commission_pct,
        )

    @property
    def slip(self) -> float:
        """Slippage as a fraction of the price."""
        return self.slippage_bps / 10_000.0

    def commission(self, qty: float, fill_price: float) -> float:
        """Commission of one fill of ``qty`` shares at ``fill_price`` (scalar or numpy arrays)."""
        return (
            self.commission_per_order
            + self.commission_per_share * qty
            + self.commission_pct * qty * fill_price
        )


@dataclass(frozen=True)
class BacktestConfig:
    """Engine configuration. :meth:`from_settings` mirrors the live risk engine's settings.

    Sizing ``"risk"`` calls :func:`stockflow.risk.sizing.position_size` (the live loop's sizing);
    ``"fixed_notional"`` buys ``floor(fixed_notional / price)`` shares (a configuration other tools
    such as vectorbt can reproduce). Limits set to ``None`` are off. ``stop_tick`` rounds stop levels
    to that tick (never lowering them), as the live loop stores stops in cents.
    """

    initial_cash: float = 10_000.0
    costs: Costs = field(default_factory=Costs)
    sizing: Sizing = "risk"
    fixed_notional: float | None = None
    risk_per_trade: float = 0.02
    max_position_weight: float = 0.10
    max_total_exposure: float | None = 0.20
    max_open_positions: int | None = 5
    max_orders_per_session: int | None = None
    min_order_notional: float = 0.0
    stop_loss: float = 0.03
    use_stops: bool = True
    trailing_stop: float | None = 0.02
    trailing_activation: float = 0.05
    stop_tick: float | None = 0.01
    close_at_end: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.initial_cash, int | float) and math.isfinite(self.initial_cash)) or (
            self.initial_cash <= 0
        ):
            raise ConfigError(f"backtest.initial_cash must be > 0, got {self.initial_cash!r}")
        if self.sizing not in ("risk", "fixed_notional"):
            raise ConfigError(f"backtest.sizing must be 'risk' or 'fixed_notional', got {self.sizing!r}")
        if self.sizing == "fixed_notional" and not (self.fixed_notional and self.fixed_notional > 0):
            raise ConfigError(
                "backtest.fixed_notional must be > 0 with sizing='fixed_notional', "
                f"got {self.fixed_notional!r}"
            )
        for name in ("risk_per_trade", "max_position_weight"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ConfigError(f"backtest.{name} must be in (0, 1], got {v!r}")
        if self.max_total_exposure is not None and not 0 < self.max_total_exposure <= 10:
            raise ConfigError(
                f"backtest.max_total_exposure must be in (0, 10], got {self.max_total_exposure!r}"
            )
        if self.max_open_positions is not None and self.max_open_positions < 1:
            raise ConfigError(f"backtest.max_open_positions must be >= 1, got {self.max_open_positions!r}")
        if self.max_orders_per_session is not None and self.max_orders_per_session < 1:
            raise ConfigError(
                f"backtest.max_orders_per_session must be >= 1, got {self.max_orders_per_session!r}"
            )
        _check_non_negative("backtest", min_order_notional=self.min_order_notional)
        if self.stop_tick is not None and not self.stop_tick > 0:
            raise ConfigError(f"backtest.stop_tick must be > 0 (or None), got {self.stop_tick!r}")
        if not 0 < self.stop_loss < 1:
            raise ConfigError(f"backtest.stop_loss must be in (0, 1), got {self.stop_loss!r}")
        if self.trailing_stop is not None and not 0 < self.trailing_stop < 1:
            raise ConfigError(f"backtest.trailing_stop must be in (0, 1), got {self.trailing_stop!r}")
        if not 0 <= self.trailing_activation < 10:
            raise ConfigError(
                f"backtest.trailing_activation must be in [0, 10), got {self.trailing_activation!r}"
            )

    @classmethod
    def from_settings(cls, settings: Settings, *, costs: bool | Costs = True) -> BacktestConfig:
        """The live loop's rules: ``settings.risk`` limits and stops, ``settings.broker`` costs,
        ``settings.backtest.initial_cash``. ``costs=False`` runs without costs; a :class:`Costs` overrides.
        """
        r = settings.risk
        c = costs if isinstance(costs, Costs) else (Costs.from_settings(settings) if costs else Costs.none())
        return cls(
            initial_cash=settings.backtest.initial_cash,
            costs=c,
            sizing="risk",
            risk_per_trade=r.risk_per_trade,
            max_position_weight=r.max_position_weight,
            max_total_exposure=r.max_total_exposure,
            max_open_positions=r.max_open_positions,
            max_orders_per_session=r.max_orders_per_run,
            min_order_notional=r.min_order_notional,
            stop_loss=r.stop_loss,
            use_stops=True,
            trailing_stop=r.trailing_stop,
            trailing_activation=r.trailing_activation,
        )

    def with_costs(self, costs: Costs) -> BacktestConfig:
        """The same configuration with other costs."""
        return replace(self, costs=costs)
