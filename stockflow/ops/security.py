"""Security rules of the local operation: where servers may bind, telemetry off, and secret scanning.

The Prefect server has no authentication unless ``PREFECT_SERVER_API_AUTH_STRING`` is set, and anyone who
reaches it can trigger the trading deployments. So it binds to loopback by default and refuses to listen
on any other address unless an auth string is configured.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stockflow.errors import ConfigError

#: The environment variable Prefect's server reads its basic-auth string ("user:password") from.
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
#: The environment variable Prefect's clients read the same string from.
CLIENT_AUTH_ENV = "PREFECT_API_AUTH_STRING"

#: Variables that switch off anonymous telemetry of Prefect and of the libraries it pulls in.
TELEMETRY_OFF: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}

#: Environment variables whose values are secrets (scanned for in logs, artifacts and parameters).
SECRET_ENV_NAMES: tuple[str, ...] = (
    "STOCKFLOW_BROKER__ALPACA_API_KEY",
    "STOCKFLOW_BROKER__ALPACA_SECRET_KEY",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
    SERVER_AUTH_ENV,
    CLIENT_AUTH_ENV,
    "PREFECT_API_KEY",
)

#: Secrets shorter than this are not scanned for: they would match ordinary text by chance.
MIN_SECRET_LEN = 8


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse to bind the Prefect server to a non-loopback address without API authentication.

    Raises :class:`ConfigError` naming the variable to set.
    """
    env = os.environ if env is None else env
    if is_loopback(host):
        return
    if not env.get(SERVER_AUTH_ENV, "").strip():
        raise ConfigError(
            f"refusing to expose the Prefect server on {host}: anyone who reaches it could start trades. "
            f"Set {SERVER_AUTH_ENV}='user:long-random-password' (clients then need {CLIENT_AUTH_ENV} "
            "with the same value), or keep the default host 127.0.0.1"
        )
    if ":" not in env[SERVER_AUTH_ENV]:
        raise ConfigError(f"{SERVER_AUTH_ENV} must look like 'user:password'")
    problem = weak_auth(env[SERVER_AUTH_ENV])
    if problem:
        raise ConfigError(
            f"refusing to expose the Prefect server on {host}: {SERVER_AUTH_ENV} is weak ({problem}). Use "
            f"'user:password' with a user name and a random password of at least {MIN_PASSWORD_LEN} "
            "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )


#: The shortest password accepted for a server reachable from other machines.
MIN_PASSWORD_LEN = 12
_COMMON_PASSWORDS = frozenset({"password", "admin", "prefect", "stockflow", "changeme", "secret", "letmein"})


def weak_auth(auth: str) -> str | None:
    """Why the basic-auth string ``user:password`` is too weak for a public bind, or None when fine."""
    user, _, password = auth.strip().partition(":")
    if not user.strip():
        return "empty user name"
    if not password:
        return "empty password"
    if len(password) < MIN_PASSWORD_LEN:
        return f"password shorter than {MIN_PASSWORD_LEN} characters"
    if password.lower() in _COMMON_PASSWORDS or password.lower() == user.lower() or len(set(password)) < 5:
        return "password too easy to guess"
    return None


def secret_values(env: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()) -> dict[str, str]:
    """The secret strings to look for, by name: known secret variables from ``env`` plus ``extra``.

    Values shorter than :data:`MIN_SECRET_LEN` are skipped (too likely to match by chance).
    """
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    for name in SECRET_ENV_NAMES:
        value = env.get(name, "")
        if len(value) >= MIN_SECRET_LEN:
            found[name] = value
            # An auth string "user:password": its password alone is a secret too.
            if ":" in value and name in (SERVER_AUTH_ENV, CLIENT_AUTH_ENV):
                password = value.split(":", 1)[1]
                if len(password) >= MIN_SECRET_LEN:
                    found[f"{name} (password)"] = password
    for i, extra_value in enumerate(extra):
        if extra_value and len(extra_value) >= MIN_SECRET_LEN:
            found[f"extra[{i}]"] = extra_value
    return found


@dataclass(frozen=True)
class SecretLeak:
    """A secret found where it must not be: which secret (by name, never by value) and where."""

    secret_name: str
    where: str


def find_secrets(texts: Mapping[str, str], secrets: Mapping[str, str]) -> list[SecretLeak]:
    """Every (secret, place) pair where a secret value occurs in one of ``texts`` (place -> text)."""
    leaks: list[SecretLeak] = []
    for where, text in texts.items():
        for name, value in secrets.items():
            if value in text:
                leaks.append(SecretLeak(secret_name=name, where=where))
    return leaks
