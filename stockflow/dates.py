"""The one parser of dates given as text (CLI options, flow parameters, settings overrides).

A leaf module (it imports only :mod:`stockflow.errors`), so the CLI, the settings' users and the stages can
all use it without an import cycle or a slow ``--help``.
"""

from __future__ import annotations

import datetime as dt

from stockflow.errors import ConfigError


def parse_date(value: str | dt.date | None, name: str) -> dt.date | None:
    """``value`` as a date: None or blank -> None, a date as it is, ``YYYY-MM-DD`` (blanks around it
    ignored) parsed. Anything else raises :class:`ConfigError` in one line naming ``name`` (the option
    or setting it came from)."""
    if value is None or isinstance(value, dt.date):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None
