"""Exception taxonomy: each class tells the caller what to do next.

- ``RetryableError``: a transient failure (timeout before sending, 429, 5xx on a read); retrying is safe.
- ``RejectedError``: the other side refused the request for a reason that will not go away by retrying
  (bad key, insufficient buying power, invalid order). Record it and move on.
- ``OutcomeUnknownError``: a write may or may not have happened (timeout or 5xx after an order POST).
  Never resubmit under a new id: reconcile with the broker first.
- ``HaltError``: trading must stop (circuit breaker, kill switch, unexplained difference with the broker).
- ``DataError`` and ``ConfigError``: bad input or bad settings; the message names the file, symbol, row
  and rule, or the setting, so a person can fix it.
"""

from __future__ import annotations


class StockflowError(Exception):
    """Base class of every error raised by stockflow on purpose."""


class ConfigError(StockflowError):
    """Settings that are invalid or contradict each other. Fix the configuration."""


class DataError(StockflowError):
    """Input data that cannot be used as it is. The message says where and which rule."""

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        symbol: str | None = None,
        row: int | None = None,
        rule: str | None = None,
    ) -> None:
        self.location = location
        self.symbol = symbol
        self.row = row
        self.rule = rule
        parts = [
            p
            for p in (
                f"file/source {location}" if location else None,
                f"symbol {symbol}" if symbol else None,
                f"row {row}" if row is not None else None,
                f"rule {rule}" if rule else None,
            )
            if p
        ]
        super().__init__(f"{message} ({', '.join(parts)})" if parts else message)


class SourceError(StockflowError):
    """A data source failed (network, auth, unknown symbol). Nothing from it was stored."""


class ValidationFailedError(StockflowError):
    """The share of rows that broke error rules passed the configured threshold."""


class RetryableError(StockflowError):
    """Transient failure; the same request may be sent again safely. ``retry_after`` (seconds), when
    known, is how long the other side asked us to wait (e.g. Alpaca's ``X-Ratelimit-Reset``)."""

    def __init__(self, *args: object, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class RejectedError(StockflowError):
    """The broker or source refused the request; retrying will not help."""


class OutcomeUnknownError(StockflowError):
    """A write may or may not have happened. Reconcile before doing anything else."""


class HaltError(StockflowError):
    """Trading must stop: breaker tripped, kill switch set, or an unexplained broker difference."""


class ModelError(StockflowError):
    """A model artifact is missing, corrupt, or does not match the feature set."""


class StoreError(StockflowError):
    """The state store cannot be used as it is: deleted or replaced during a run, unreachable, read-only
    or full. Nothing more is written; fix the store, then run again."""
