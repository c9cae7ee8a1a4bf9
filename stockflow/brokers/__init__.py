"""Brokers behind one small protocol (``base.Broker``): the embedded ``paper`` broker and ``alpaca``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockflow.brokers.base import Broker, DuplicateClientOrderIdError, MarketClock
from stockflow.brokers.ids import client_order_id

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stockflow.config import Settings


def make_broker(settings: Settings, engine: Engine) -> Broker:
    """The broker selected by ``settings.broker.kind`` (``paper`` keeps its state in ``engine``)."""
    if settings.broker.kind == "alpaca":
        from stockflow.brokers.alpaca import AlpacaBroker

        return AlpacaBroker(settings.broker)
    from stockflow.brokers.paper import PaperBroker

    return PaperBroker(engine, settings.broker)


__all__ = ["Broker", "DuplicateClientOrderIdError", "MarketClock", "client_order_id", "make_broker"]
