"""HTTP plumbing of the Alpaca adapter: the keys, a client with timeouts and without alpaca-py's own
retries, and the mapping of alpaca-py's answers onto stockflow's error taxonomy."""

from __future__ import annotations

import json
import time
from typing import Any

from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, RequestException, Timeout

from stockflow.config.credentials import alpaca_keys
from stockflow.config.sections import BrokerSettings
from stockflow.errors import OutcomeUnknownError, RejectedError, RetryableError


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a (connect, read) timeout unless one is set explicitly."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = (min(timeout, 5.0), timeout)

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def alpaca_credentials(settings: BrokerSettings) -> tuple[str, str]:
    """API key and secret from the shared resolver (:mod:`stockflow.config.credentials`)."""
    keys = alpaca_keys(settings, who="broker.kind=alpaca")
    return keys.key_id, keys.secret


def make_trading_client(settings: BrokerSettings) -> Any:
    """An alpaca-py ``TradingClient`` with explicit timeouts and without its own retries."""
    from alpaca.trading.client import TradingClient

    key, secret = alpaca_credentials(settings)
    client = TradingClient(
        key, secret, paper=settings.alpaca_paper, url_override=settings.alpaca_url_override
    )
    adapter = _TimeoutAdapter(settings.http_timeout_s)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)
    # Retrying is the execution layer's decision (same client_order_id, after reconciling on a 504).
    client._retry = 0
    client._retry_codes = []
    return client


def api_error_info(err: Exception) -> tuple[int | None, int | None, str]:
    status = getattr(err, "status_code", None)
    code, message = None, str(err)
    try:
        body = json.loads(str(err))
        code, message = body.get("code"), body.get("message", message)
    except (ValueError, TypeError, AttributeError):
        pass
    return status, code, message


def reset_in(response: Any) -> float | None:
    """Seconds until ``X-Ratelimit-Reset`` (epoch seconds), or None when the header is absent."""
    try:
        reset = float(response.headers["X-Ratelimit-Reset"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return max(0.0, reset - time.time())


def call_alpaca(
    what: str, fn: Any, *args: Any, write: bool = False, timeout_s: float = 0.0, **kwargs: Any
) -> Any:
    """Call alpaca-py and map its answers onto our taxonomy (see :mod:`stockflow.brokers.alpaca`);
    other 4xx answers come out as :class:`Http4xx` for the caller to interpret."""
    from alpaca.common.exceptions import APIError

    try:
        return fn(*args, **kwargs)
    except APIError as err:
        status, code, message = api_error_info(err)
        if status == 429:
            wait = reset_in(getattr(err, "response", None))
            raise RetryableError(
                f"alpaca {what}: rate limited (429)"
                + (f", limit resets in {wait:.1f}s" if wait is not None else ""),
                retry_after=wait,
            ) from None
        if status is not None and status >= 500:
            if write:
                raise OutcomeUnknownError(
                    f"alpaca {what}: HTTP {status} after sending; the order may exist"
                ) from None
            raise RetryableError(f"alpaca {what}: HTTP {status}") from None
        if status == 401:
            raise RejectedError(f"alpaca {what}: not authorized (check the API keys)") from None
        raise Http4xx(status, code, message) from None
    except ConnectTimeout:
        raise RetryableError(f"alpaca {what}: connect timeout (nothing sent)") from None
    except Timeout:
        if write:
            raise OutcomeUnknownError(
                f"alpaca {what}: no answer within {timeout_s}s; the order may exist"
            ) from None
        raise RetryableError(f"alpaca {what}: timeout") from None
    except RequestsConnectionError as err:
        never_connected = "NewConnectionError" in repr(err) or "Connection refused" in repr(err)
        if write and not never_connected:
            raise OutcomeUnknownError(f"alpaca {what}: connection lost after sending") from None
        raise RetryableError(f"alpaca {what}: connection failed") from None
    except RequestException as err:
        if write:
            raise OutcomeUnknownError(f"alpaca {what}: {type(err).__name__}") from None
        raise RetryableError(f"alpaca {what}: {type(err).__name__}") from None


class Http4xx(Exception):  # noqa: N818 (internal signal, never escapes the adapter)
    """A 4xx answer not mapped yet: status, Alpaca's code and message."""

    def __init__(self, status: int | None, code: int | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def as_rejected(self, what: str) -> RejectedError:
        """The answer as a final refusal."""
        return RejectedError(f"alpaca {what}: HTTP {self.status} code {self.code}: {self.message}")
