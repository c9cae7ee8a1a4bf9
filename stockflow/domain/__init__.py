"""Immutable domain types shared by every layer."""
