"""Settings sections. Each area of stockflow owns one section; the root object composes them.

Every model forbids unknown keys so that a typo in ``stockflow.yaml`` fails loudly instead of being
ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from stockflow.choices import MEMBER_KINDS, MODEL_KINDS, MemberKind, ModelKind, SourceName, TradeMode


class Section(BaseModel):
    """Base of all settings sections: frozen and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(Section):
    """Where bars come from and which universe is traded."""

    source: SourceName = "sample"
    symbols: list[str] = Field(
        default_factory=lambda: ["AAPL", "IBM", "MSFT", "GOOG"],
        description="Universe. Empty means every symbol the source offers.",
    )
    path: str | None = Field(None, description="File or directory for the 'files' source.")
    start: dt.date | None = Field(None, description="First session to ingest (YYYY-MM-DD); None = all.")
    end: dt.date | None = Field(None, description="Last session to ingest (YYYY-MM-DD); None = latest.")
    max_file_mb: float = Field(
        512.0,
        gt=0,
        description="Largest file (MB on disk, or once decompressed) the files source reads; a bigger "
        "one is refused by name (split it, or raise this). Files are read in one piece (~5x in memory).",
    )
    timeframe: Literal["1Day"] = "1Day"
    calendar: str = "XNYS"
    fetch_retries: int = Field(3, ge=0, le=10)

    @model_validator(mode="after")
    def _window(self) -> DataSettings:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"data.start ({self.start}) is after data.end ({self.end})")
        return self

    http_timeout_s: float = Field(20.0, gt=0, le=300)
    alpaca_data_url: str | None = Field(
        None, description="Base URL of Alpaca's market-data API (None: https://data.alpaca.markets)."
    )
    alpaca_feed: Literal["iex", "sip", "delayed_sip"] = Field(
        "iex", description="Alpaca bar feed; free accounts get 'iex' (or 'delayed_sip')."
    )
    alpaca_adjustment: Literal["raw", "split", "dividend", "all"] = "all"
    rate_limit_retries: int = Field(3, ge=0, le=20, description="Retries of one HTTP request answered 429.")
    rate_limit_wait_s: float = Field(3.0, ge=0, le=120, description="Wait before retrying a 429.")


class ValidationSettings(Section):
    """Thresholds of the Great Expectations rules (see expectations/)."""

    max_abs_daily_return: float = Field(
        0.75, gt=0, description="Hard bound on |close/prev_close - 1|; real fat tails stay under it."
    )
    max_failed_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="The ingest flow fails when more than this share of rows is quarantined.",
    )
    missing_sessions_mostly: float = Field(0.98, ge=0, le=1)
    max_price: float = Field(1e7, gt=0, description="Hard bound on any price (BRK.A is under 1e6).")
    max_intraday_ratio: float = Field(
        4.0, gt=1, description="Bound on high/max(open, close) and min(open, close)/low (real max ~3.2)."
    )
    max_volume: float = Field(1e11, gt=0, description="Hard bound on one day's volume (shares).")
    max_volume_ratio: float = Field(
        500.0, gt=1, description="Bound on volume / median of the symbol's previous 20 volumes."
    )
    volume_median_floor: float = Field(
        1e5, ge=0, description="The median used by max_volume_ratio is at least this (thin first days)."
    )
    check_calendar: bool = True
    max_examples: int = Field(
        20, ge=1, le=1000, description="Example rows kept per rule in the stored summary."
    )
    min_failed_rows: int = Field(
        3,
        ge=1,
        description="The max_failed_share test needs at least this many quarantined rows (one bad bar "
        "in a four-symbol daily batch is quarantined, not fatal).",
    )


class FeatureSettings(Section):
    """Feature engineering and labels."""

    feature_set_version: str = Field(
        "ta-v1",
        description="Feature set: 'ta-v1' (TA-Lib, 31 columns) or 'a158-v1' (Alpha158-style, 94 columns); "
        "chosen from the walk-forward benchmark (bench/bench_models.py).",
    )
    label_horizon: int = Field(
        5,
        ge=1,
        le=20,
        description="Sessions ahead for the label (t+1..t+h): the model ranks stocks by their excess return "
        "over the universe over this horizon. 5 from the walk-forward benchmark (docs: Honest evaluation).",
    )
    min_history: int = Field(260, ge=30, description="Bars of history loaded for live features.")


def _all_kinds() -> list[ModelKind]:
    return list(MODEL_KINDS)


def _all_members() -> list[MemberKind]:
    return list(MEMBER_KINDS)


class ModelSettings(Section):
    """Training, walk-forward evaluation and promotion."""

    kinds: list[ModelKind] = Field(default_factory=_all_kinds)
    train_window_days: int = Field(1260, ge=60)
    test_window_days: int = Field(126, ge=5)
    n_folds: int = Field(4, ge=1, le=50)
    purge_days: int = Field(5, ge=0)
    promotion_margin: float = Field(0.005, ge=0, description="Required improvement over champion.")
    lstm_window: int = Field(20, ge=2)
    lstm_units: int = Field(16, ge=1)
    lstm_epochs: int = Field(15, ge=1)
    seed: int = 42
    # Added by the models area (issue 3); all additive with defaults.
    val_days: int = Field(
        250,
        ge=5,
        description="Sessions at the end of each training window held out for early stopping, "
        "calibration and ensemble weights (after a purge gap).",
    )
    promotion_metric: Literal["log_loss", "brier", "auc", "accuracy", "ic"] = Field(
        "ic",
        description="Walk-forward metric on which a challenger must beat the champion by promotion_margin "
        "(ic = mean per-session cross-sectional rank IC; log_loss/brier: lower is better; auc = pooled ROC "
        "AUC, descriptive only on a panel).",
    )
    promotion_t_min: float = Field(
        2.0,
        gt=0,
        description="Session-level (Newey-West) t a challenger's rank IC must reach over the momentum and "
        "reversal baselines' to be promoted.",
    )
    cost_bps: float = Field(
        10.0,
        ge=0,
        description="One-way trading cost (bps of value traded) charged to the top-k portfolios of the "
        "walk-forward evaluation and the benchmark.",
    )
    ensemble_members: list[MemberKind] = Field(default_factory=_all_members)
    lgbm_num_boost_round: int = Field(300, ge=1)
    lgbm_learning_rate: float = Field(0.03, gt=0, le=1)
    lgbm_num_leaves: int = Field(15, ge=2)
    lgbm_min_data_in_leaf: int = Field(100, ge=1)
    lstm_batch_size: int = Field(256, ge=1)
    lstm_patience: int = Field(3, ge=1)
    momentum_column: str = "ret_20"
    n_threads: int = Field(
        1,
        ge=1,
        description="CPU threads for LightGBM. 1 by default: with OpenMP, 2 threads on 2 busy cores ran 10x "
        "slower than 1 (measured); raise it on a machine that does nothing else.",
    )
    max_train_rows: int | None = Field(
        None, ge=100, description="Cap on training rows per fold (latest rows kept); None = all."
    )


class DriftSettings(Section):
    """Evidently drift monitoring."""

    reference_days: int = Field(250, ge=20)
    current_days: int = Field(20, ge=5)
    drift_share_threshold: float = Field(0.5, ge=0, le=1)
    request_retrain: bool = True
    # Added by the models area (issue 3).
    method: str | None = Field(
        None,
        description="Evidently stattest for every column (e.g. 'ks', 'wasserstein', 'psi'); None = auto.",
    )


class RiskSettings(Section):
    """Hard risk rules: sizing, limits, stops, breaker."""

    risk_per_trade: float = Field(0.02, gt=0, le=0.1, description="Max share of equity lost at the stop.")
    max_total_exposure: float = Field(0.20, gt=0, le=1)
    max_position_weight: float = Field(0.10, gt=0, le=1)
    max_open_positions: int = Field(5, ge=1)
    max_orders_per_run: int = Field(10, ge=1)
    min_order_notional: float = Field(10.0, ge=0)
    stop_loss: float = Field(0.03, gt=0, lt=1)
    trailing_stop: float = Field(0.02, gt=0, lt=1)
    trailing_activation: float = Field(0.05, ge=0, lt=10)
    daily_loss_limit: float = Field(0.05, gt=0, lt=1)
    flatten_on_halt: bool = False
    pdt_min_equity: float = Field(
        25_000.0,
        ge=0,
        description="Pattern-day-trader rule: below this equity a 4th day trade in 5 business days is "
        "refused (denied:pdt). 0 turns the rule off (accounts that are not US margin accounts).",
    )


class BrokerSettings(Section):
    """Which broker executes, and its costs (paper) or endpoint (alpaca)."""

    kind: Literal["paper", "alpaca"] = "paper"
    initial_cash: float = Field(10_000.0, gt=0)
    slippage_bps: float = Field(5.0, ge=0)
    commission_per_share: float = Field(0.0, ge=0)
    commission_per_order: float = Field(0.0, ge=0)
    commission_pct: float = Field(0.0, ge=0)
    alpaca_api_key: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    alpaca_secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding 'key:secret' (alternative to env vars)."
    )
    alpaca_paper: bool = True
    alpaca_url_override: str | None = None
    live_trading_confirmed: bool = Field(
        False, description="Second confirmation required with alpaca_paper=false."
    )
    http_timeout_s: float = Field(10.0, gt=0, le=120)
    fill_poll_s: float = Field(30.0, ge=0)
    paper_pdt: bool = Field(
        False,
        description="The paper broker refuses a 4th day trade in 5 sessions under $25k, as Alpaca does.",
    )

    @model_validator(mode="after")
    def _live_needs_opt_in(self) -> BrokerSettings:
        if self.kind == "alpaca" and not self.alpaca_paper and not self.live_trading_confirmed:
            raise ValueError(
                "live trading (broker.alpaca_paper=false) needs broker.live_trading_confirmed=true as well"
            )
        if self.live_trading_confirmed and self.alpaca_paper:
            # One opt-in alone is refused either way: the two must agree (README "Live trading").
            raise ValueError(
                "broker.live_trading_confirmed=true without broker.alpaca_paper=false: live trading needs "
                "both; set alpaca_paper=false too, or remove live_trading_confirmed to stay on paper"
            )
        return self


class TradingSettings(Section):
    """Trading modes and approval. The live run trades the top-k book (``portfolio``); the thresholds
    below drive only the backtester's older per-symbol ML rule (``MLStrategy`` without ``book_rules``)."""

    mode: TradeMode = "auto"
    auto_threshold: float = Field(0.8, ge=0, le=1)
    approval_threshold: float = Field(0.55, ge=0, le=1)
    approval_timeout_s: int = Field(1800, ge=10)
    allow_short: bool = False
    # Added by the pipeline area (issue 4); all additive with defaults.
    exit_threshold: float = Field(
        0.5, ge=0, le=1, description="A held long is closed when P(up) falls below this (as the backtester)."
    )
    signal_source: Literal["champion", "best_challenger"] = Field(
        "champion",
        description="Which model's predictions become signals. 'champion' (default) is the promoted model; "
        "'best_challenger' is an opt-in FOR DEMOS AND TESTS ONLY: it uses the best trained model even "
        "though it did not beat the baselines, and every signal says so.",
    )
    train_if_no_model: bool = Field(
        True, description="The trade flow trains first when no model was ever trained."
    )
    approval_poll_s: int = Field(
        1, ge=1, le=60, description="How often a paused trade run checks whether it was resumed."
    )
    max_price_move: float = Field(
        0.05,
        gt=0,
        le=1,
        description="On resume, an approved order whose price moved more than this share from the price "
        "shown is refused (prices re-validated).",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> TradingSettings:
        if self.approval_threshold > self.auto_threshold:
            raise ValueError(
                f"trading.approval_threshold ({self.approval_threshold}) must not exceed "
                f"trading.auto_threshold ({self.auto_threshold})"
            )
        return self


class PortfolioSettings(Section):
    """Portfolio construction (top-k over the model's cross-sectional scores) and hybrid approval.

    Each session the target book is the ``top_k`` best-scored symbols; a holding is kept while its rank
    stays within ``top_k + hold_buffer``; at most ``max_changes`` holdings are replaced per session
    (``None``: no bound). The book is then sized and limited by ``risk`` (at most
    ``risk.max_open_positions`` names, each at most ``min(risk.max_position_weight,
    risk.max_total_exposure / names)`` of equity, 2% risk at the stop...). In ``hybrid`` mode an order
    needs a person when its calibrated probability of outperforming the universe lies in
    ``[approval_band_low, approval_band_high]`` or its notional exceeds ``approval_notional``.
    """

    top_k: int = Field(10, ge=1, description="Names in the target book (capped by risk.max_open_positions).")
    hold_buffer: int = Field(5, ge=0, description="A holding stays while its rank <= top_k + hold_buffer.")
    max_changes: int | None = Field(
        3, ge=0, description="Holdings replaced by rank per session at most (null: no bound)."
    )
    approval_band_low: float = Field(
        0.45, ge=0, le=1, description="Hybrid: orders with P(outperform) in the band need a person."
    )
    approval_band_high: float = Field(
        0.55, ge=0, le=1, description="Hybrid: upper end of the approval band (inclusive)."
    )
    approval_notional: float | None = Field(
        5_000.0, ge=0, description="Hybrid: orders above this notional (dollars) need a person (null: never)."
    )

    @model_validator(mode="after")
    def _band_ordered(self) -> PortfolioSettings:
        if self.approval_band_low > self.approval_band_high:
            raise ValueError(
                f"portfolio.approval_band_low ({self.approval_band_low}) must not exceed "
                f"portfolio.approval_band_high ({self.approval_band_high})"
            )
        return self


class BacktestSettings(Section):
    """Backtest defaults."""

    start: str | None = None
    end: str | None = None
    initial_cash: float = Field(10_000.0, gt=0)


class ServerSettings(Section):
    """The local operation: Prefect server/UI and the reports server."""

    host: str = "127.0.0.1"
    prefect_port: int = Field(4200, ge=1, le=65535)
    reports_port: int = Field(8765, ge=1, le=65535)


class ComputeSettings(Section):
    """Where the parallel work runs (issue 14): in this process, on a local Dask cluster, or on an existing
    one. Flow runs themselves go to other machines through Prefect work pools (docs/scale-out.md)."""

    dask_address: str | None = Field(
        None,
        description="None (default): everything in this process, as before. 'local': a Dask LocalCluster "
        "of worker processes sized to this machine. 'tcp://host:8786': an existing Dask scheduler "
        "(`dask scheduler` / `dask worker`).",
    )
    local_workers: int | None = Field(
        None, ge=1, le=256, description="Worker processes of the 'local' cluster (None: one per CPU core)."
    )
    local_memory_limit: str = Field(
        "auto",
        description="Memory limit per worker of the 'local' cluster ('auto' = machine memory / workers, or "
        "e.g. '4GB'); above 60-70% of it a worker spills to disk, at 95% it is restarted.",
    )
    dashboard_address: str | None = Field(
        ":8787", description="Dask dashboard of the 'local' cluster (None: no dashboard)."
    )
    feature_chunk_symbols: int = Field(
        64, ge=1, le=100_000, description="Symbols per Dask future when features are built on a cluster."
    )

    @model_validator(mode="after")
    def _check_address(self) -> ComputeSettings:
        addr = self.dask_address
        if addr is not None and addr != "local" and "://" not in addr:
            raise ValueError(
                f"compute.dask_address {addr!r} is neither 'local' nor a scheduler address like "
                "'tcp://host:8786'"
            )
        return self


class NotificationSettings(Section):
    """Notifications through Prefect automations, set up by ``stockflow up`` (issue 11).

    Off unless ``webhook_url`` or ``block`` is set. ``stockflow up`` then creates (or updates) one
    automation per event: a trade run paused for approval, a stockflow run failed or crashed, the trading
    state set to HALTED (kill switch or daily-loss breaker), and a ``trade`` run not completed within
    ``trade_complete_within_min`` minutes of its scheduled start (a proactive trigger: the absence of the
    expected event).
    """

    webhook_url: SecretStr | None = Field(
        None,
        description="POST every notification as JSON {subject, body} to this URL (a Prefect Custom Webhook "
        "notification block named 'stockflow-notifications' is created for it).",
    )
    block: str | None = Field(
        None,
        description="Or: the name of an existing Prefect notification block (Slack, Teams, email...), "
        "as 'block-type-slug/name', e.g. 'slack-webhook/trading-desk'.",
    )
    trade_complete_within_min: float = Field(
        60,
        ge=1 / 6,
        le=24 * 60,
        description="Minutes after a trade run's scheduled start by which it must have completed; "
        "otherwise a notification says so.",
    )
    trade_deployment: str = Field("trade/trade", description="The deployment watched for completion.")
    display_timezone: str = Field(
        "America/New_York", description="Zone of the times shown in notifications (the exchange's)."
    )
