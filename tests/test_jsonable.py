"""The one JSON conversion: what the backtest records and what model cards hold read the same."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from stockflow.jsonable import jsonable


def test_numpy_scalars_dates_and_non_finite_floats_become_plain_json() -> None:
    got = jsonable({"k": np.int64(3), 1: (np.bool_(True), np.float64("nan")), "day": dt.date(2024, 1, 2)})
    assert got == {"k": 3, "1": [True, None], "day": "2024-01-02"}
    assert json.loads(json.dumps(got)) == got
