"""The one typed settings object: defaults < YAML file < environment < explicit arguments."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stockflow.config.sections import (
    BacktestSettings,
    BrokerSettings,
    ComputeSettings,
    DataSettings,
    DriftSettings,
    FeatureSettings,
    ModelSettings,
    NotificationSettings,
    PortfolioSettings,
    RiskSettings,
    ServerSettings,
    TradingSettings,
    ValidationSettings,
)
from stockflow.errors import ConfigError

#: Config file looked up when STOCKFLOW_CONFIG is not set.
DEFAULT_CONFIG_FILE = "stockflow.yaml"


#: Environment variables with the STOCKFLOW_ prefix that are not settings but are read by stockflow.
NON_SETTING_ENV = frozenset(
    {
        "STOCKFLOW_CONFIG",
        "STOCKFLOW_DEBUG",
        "STOCKFLOW_FAILPOINTS",
        "STOCKFLOW_REPORTS_URL",
    }
)
CONFIG_ENV = "STOCKFLOW_CONFIG"


def config_file() -> Path:
    """The YAML file settings are read from (it may not exist; ``STOCKFLOW_CONFIG=""``: none)."""
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))


def read_config_file() -> dict[str, Any]:
    """The YAML settings file as a mapping. ``stockflow.yaml`` may be absent; a file named by
    ``STOCKFLOW_CONFIG`` must exist (else the user's limits would silently not apply). Raises
    :class:`ConfigError` naming the file for a missing file, invalid YAML or a top level that is not a
    mapping of sections."""
    import yaml

    named = os.environ.get(CONFIG_ENV)
    if named is not None and not named.strip():
        return {}
    path = config_file()
    if not path.exists():
        if named is not None:
            raise ConfigError(
                f"{CONFIG_ENV}={named} names a file that does not exist; fix the path or unset {CONFIG_ENV} "
                "(nothing was run with default settings in place of yours)"
            )
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); fix the file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections (data:, risk:, broker: ...), "
            f"found a {type(data).__name__}"
        )
    return data


def _known_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(f"{prefix}{name.upper()}")
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= _known_env_names(ann, f"{prefix}{name.upper()}__")
    return names


def unknown_env_variables(environ: dict[str, str] | None = None) -> list[str]:
    """``STOCKFLOW_*`` variables that match no setting (``STOCKFLOW_RISK_STOP_LOSS`` with one underscore
    instead of two), which pydantic-settings would otherwise ignore without a word."""
    env = os.environ if environ is None else environ
    known = _known_env_names(Settings, "STOCKFLOW_") | NON_SETTING_ENV
    return sorted(
        k
        for k in env
        if k.upper().startswith("STOCKFLOW_")
        and k.upper() not in known
        and not k.upper().startswith("STOCKFLOW_TEST_")
    )


_warned: set[str] = set()


def _warn_unknown_env() -> None:
    for name in unknown_env_variables():
        if name in _warned:
            continue
        _warned.add(name)
        logging.getLogger("stockflow.config").warning(
            "warning: environment variable %s matches no stockflow setting and is ignored "
            "(sections and keys are separated by two underscores, e.g. STOCKFLOW_RISK__STOP_LOSS)",
            name,
        )


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
    portfolio: PortfolioSettings = PortfolioSettings()
    drift: DriftSettings = DriftSettings()
    risk: RiskSettings = RiskSettings()
    broker: BrokerSettings = BrokerSettings()
    trading: TradingSettings = TradingSettings()
    backtest: BacktestSettings = BacktestSettings()
    server: ServerSettings = ServerSettings()
    compute: ComputeSettings = ComputeSettings()
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
        yaml_source = InitSettingsSource(settings_cls, init_kwargs=read_config_file())
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
    """One line: every problem, naming the setting (and its value), separated by ``;``."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}': not a stockflow setting (check spelling)")
        else:
            value = e.get("input")
            short = isinstance(value, (str, int, float)) and len(repr(value)) < 60
            shown = f" (got {value!r})" if short else ""
            parts.append(f"{loc}: {e['msg']}{shown}")
    return f"invalid settings (file {config_file()}, environment STOCKFLOW_*): " + "; ".join(parts)


def _format_settings_error(err: SettingsError) -> str:
    """pydantic-settings could not decode an environment value (a list or section must be JSON)."""
    suspects = []
    for k, v in os.environ.items():
        if not k.upper().startswith("STOCKFLOW_") or k.upper() in NON_SETTING_ENV:
            continue
        try:
            json.loads(v)
        except ValueError:
            if "," in v or v.strip().startswith(("[", "{")):
                suspects.append(f"{k}={v!r}")
    named = ", ".join(suspects) or "a STOCKFLOW_* variable"
    return (
        f"invalid settings in the environment: {named} cannot be read ({err}); lists and sections are "
        'written as JSON there, e.g. STOCKFLOW_DATA__SYMBOLS=\'["AAPL","MSFT"]\''
    )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation failures into a readable :class:`ConfigError` (one line
    per problem, naming the setting). Warns about ``STOCKFLOW_*`` variables that match no setting."""
    _warn_unknown_env()
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None
    except SettingsError as err:
        raise ConfigError(_format_settings_error(err)) from None
