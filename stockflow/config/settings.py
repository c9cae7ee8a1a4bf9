"""The one typed settings object: defaults < YAML file < environment < explicit arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from stockflow.config.sections import (
    BacktestSettings,
    BrokerSettings,
    DataSettings,
    DriftSettings,
    FeatureSettings,
    ModelSettings,
    NotificationSettings,
    RiskSettings,
    ServerSettings,
    TradingSettings,
    ValidationSettings,
)
from stockflow.errors import ConfigError

#: Config file looked up when STOCKFLOW_CONFIG is not set.
DEFAULT_CONFIG_FILE = "stockflow.yaml"


def config_file() -> Path:
    """The YAML file settings are read from (it may not exist)."""
    return Path(os.environ.get("STOCKFLOW_CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    """All of stockflow's configuration. Environment variables use the ``STOCKFLOW_`` prefix and ``__``
    between levels, e.g. ``STOCKFLOW_RISK__STOP_LOSS=0.04``. Secrets are ``SecretStr`` and never shown.
    """

    model_config = SettingsConfigDict(
        env_prefix="STOCKFLOW_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("data")
    reports_dir: Path = Path("reports")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("STOCKFLOW_DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; default is a SQLite file in data_dir. postgresql:// uses psycopg 3.",
    )
    data: DataSettings = DataSettings()
    validation: ValidationSettings = ValidationSettings()
    features: FeatureSettings = FeatureSettings()
    models: ModelSettings = ModelSettings()
    drift: DriftSettings = DriftSettings()
    risk: RiskSettings = RiskSettings()
    broker: BrokerSettings = BrokerSettings()
    trading: TradingSettings = TradingSettings()
    backtest: BacktestSettings = BacktestSettings()
    server: ServerSettings = ServerSettings()
    notifications: NotificationSettings = NotificationSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file())
        return (init_settings, env_settings, yaml_source)

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, v: str | None) -> str | None:
        if v and v.startswith("postgresql://"):
            return "postgresql+psycopg://" + v.removeprefix("postgresql://")
        if v and v.startswith("postgres://"):
            return "postgresql+psycopg://" + v.removeprefix("postgres://")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        # A stop wider than the risk budget allows no share at any sensible price: refuse early.
        if self.risk.stop_loss * self.risk.max_position_weight < 1e-6:
            raise ValueError("risk.stop_loss and risk.max_position_weight leave no room for any position")
        if self.risk.max_position_weight > self.risk.max_total_exposure:
            raise ValueError(
                f"risk.max_position_weight ({self.risk.max_position_weight}) exceeds "
                f"risk.max_total_exposure ({self.risk.max_total_exposure})"
            )
        return self

    @property
    def db_url(self) -> str:
        """The effective database URL (SQLite in data_dir unless set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'stockflow.db').resolve()}"

    def redacted(self) -> dict[str, Any]:
        """Settings as plain data with every secret and URL password masked, for showing and logging."""
        out = self.model_dump(mode="json")
        out["database_url"] = redact_url(self.db_url)
        return out


def redact_url(url: str) -> str:
    """Mask the password of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def _format_validation_error(err: ValidationError) -> str:
    lines = [f"invalid settings (file {config_file()}, environment STOCKFLOW_*):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{loc}': not a stockflow setting (check spelling)")
        else:
            lines.append(f"  - {loc}: {e['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation failures into a readable :class:`ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None
