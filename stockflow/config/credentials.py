"""ONE resolver of Alpaca's API keys, used by the market-data source and the broker alike.

Looked up in this order (the first complete pair wins; a half pair is an error naming the missing half):

1. the settings: ``broker.alpaca_api_key`` / ``broker.alpaca_secret_key`` (env
   ``STOCKFLOW_BROKER__ALPACA_API_KEY`` / ``STOCKFLOW_BROKER__ALPACA_SECRET_KEY``);
2. Alpaca's own environment variables ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (what alpaca-py and
   Alpaca's documentation use);
3. a Prefect Secret block named by ``broker.alpaca_secret_block`` holding ``key:secret``.

Keys are never logged or put into messages; :class:`AlpacaKeys` hides them in its repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stockflow.config.sections import BrokerSettings
from stockflow.errors import ConfigError

ENV_KEY_ID = "APCA_API_KEY_ID"
ENV_SECRET = "APCA_API_SECRET_KEY"
_HOW = (
    f"set {ENV_KEY_ID} and {ENV_SECRET} (or STOCKFLOW_BROKER__ALPACA_API_KEY and "
    "STOCKFLOW_BROKER__ALPACA_SECRET_KEY), or name a Prefect Secret block holding 'key:secret' in "
    "broker.alpaca_secret_block"
)


@dataclass(frozen=True, slots=True)
class AlpacaKeys:
    """An API key id and secret, and where they came from (``settings``, ``env``, ``secret block X``)."""

    key_id: str = field(repr=False)
    secret: str = field(repr=False)
    origin: str


def alpaca_keys(
    settings: BrokerSettings, *, env: Mapping[str, str] | None = None, who: str = "alpaca"
) -> AlpacaKeys:
    """Resolve the keys (see the module docstring) or raise one clear :class:`ConfigError`."""
    env = os.environ if env is None else env
    pairs = [
        (
            "settings",
            settings.alpaca_api_key.get_secret_value() if settings.alpaca_api_key else None,
            settings.alpaca_secret_key.get_secret_value() if settings.alpaca_secret_key else None,
            ("STOCKFLOW_BROKER__ALPACA_API_KEY", "STOCKFLOW_BROKER__ALPACA_SECRET_KEY"),
        ),
        ("env", env.get(ENV_KEY_ID) or None, env.get(ENV_SECRET) or None, (ENV_KEY_ID, ENV_SECRET)),
    ]
    for origin, key, secret, names in pairs:
        if key and secret:
            return AlpacaKeys(key, secret, origin)
        if key or secret:
            missing = names[1] if key else names[0]
            raise ConfigError(f"{who}: {missing} is not set ({names[0] if key else names[1]} is)")
    if settings.alpaca_secret_block:
        return _from_block(settings.alpaca_secret_block)
    raise ConfigError(f"{who} needs API keys: {_HOW}")


def _from_block(name: str) -> AlpacaKeys:
    from prefect.blocks.system import Secret

    try:
        block: Any = Secret.load(name)  # sync context: returns the block
    except ValueError as err:
        raise ConfigError(f"Prefect Secret block {name!r} not found: {err}") from None
    key, sep, secret = str(block.get()).partition(":")
    if not sep or not key or not secret:
        raise ConfigError(f"Prefect Secret block {name!r} must hold 'key:secret'")
    return AlpacaKeys(key, secret, f"secret block {name}")
