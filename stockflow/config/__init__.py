"""Typed settings: ``load_settings()`` returns the one :class:`Settings` object."""

from stockflow.config.settings import Settings, config_file, load_settings, redact_url

__all__ = ["Settings", "config_file", "load_settings", "redact_url"]
