"""Settings a person got wrong: one clear line naming the file, variable or key (in-process)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stockflow.config import load_settings
from stockflow.config.sections import BrokerSettings
from stockflow.config.settings import unknown_env_variables
from stockflow.errors import ConfigError
from stockflow.ops.security import SERVER_AUTH_ENV, check_bind


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def test_config_file_not_yaml_names_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "stockflow.yaml"
    f.write_text("data: {source: files\nrisk: [\n")
    monkeypatch.setenv("STOCKFLOW_CONFIG", str(f))
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = _one_line(err.value)
    assert str(f) in msg and "not valid YAML" in msg and "line" in msg


def test_config_file_that_is_a_list_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "stockflow.yaml"
    f.write_text("- data\n- risk\n")
    monkeypatch.setenv("STOCKFLOW_CONFIG", str(f))
    with pytest.raises(ConfigError, match=r"must be a mapping of sections.*found a list"):
        load_settings()


def test_missing_config_file_named_by_env_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKFLOW_CONFIG", str(tmp_path / "risk-limits.yaml"))
    with pytest.raises(
        ConfigError, match=r"STOCKFLOW_CONFIG=.*risk-limits\.yaml names a file that does not exist"
    ):
        load_settings()
    monkeypatch.setenv("STOCKFLOW_CONFIG", "")  # explicitly no file
    assert load_settings().risk.stop_loss > 0


def test_env_list_not_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKFLOW_DATA__SYMBOLS", "A,B")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = _one_line(err.value)
    assert "STOCKFLOW_DATA__SYMBOLS='A,B'" in msg and '["AAPL","MSFT"]' in msg


def test_dates_are_validated_as_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKFLOW_DATA__START", "yesterday")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "data.start" in _one_line(err.value) and "'yesterday'" in str(err.value)
    monkeypatch.setenv("STOCKFLOW_DATA__START", "2024-02-01")
    monkeypatch.setenv("STOCKFLOW_DATA__END", "2024-01-01")
    with pytest.raises(ConfigError, match=r"data.start \(2024-02-01\) is after data.end"):
        load_settings()


def test_unknown_stockflow_variable_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STOCKFLOW_RISK_STOP_LOSS", "0.1")  # one underscore: silently ignored before
    monkeypatch.setenv("STOCKFLOW_RISK__STOP_LOSS", "0.04")  # a real setting: no warning
    assert unknown_env_variables() == ["STOCKFLOW_RISK_STOP_LOSS"]
    with caplog.at_level(logging.WARNING, logger="stockflow.config"):
        s = load_settings()
    assert s.risk.stop_loss == 0.04
    assert any(
        "STOCKFLOW_RISK_STOP_LOSS matches no stockflow setting" in r.getMessage() for r in caplog.records
    )


def test_live_confirmation_alone_is_refused() -> None:
    with pytest.raises(ValueError, match=r"live_trading_confirmed=true without broker\.alpaca_paper=false"):
        BrokerSettings(kind="alpaca", live_trading_confirmed=True)
    live = BrokerSettings(kind="alpaca", alpaca_paper=False, live_trading_confirmed=True)
    assert not live.alpaca_paper


@pytest.mark.parametrize(
    ("auth", "why"),
    [
        (":", "empty user name"),
        ("admin:", "empty password"),
        ("admin:short", "shorter than 12"),
        ("admin:password", "shorter than 12"),
        ("admin:aaaaaaaaaaaaaaaa", "too easy to guess"),
    ],
)
def test_weak_auth_refused_for_a_public_bind(auth: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        check_bind("0.0.0.0", {SERVER_AUTH_ENV: auth})
    check_bind("127.0.0.1", {SERVER_AUTH_ENV: auth})  # loopback needs none
    check_bind("0.0.0.0", {SERVER_AUTH_ENV: "ops:Xk3v9-qLm2-Tt7w"})
