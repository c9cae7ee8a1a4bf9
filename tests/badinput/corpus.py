"""The bad-input corpus: one case per kind of bad input or bad luck from issue 12, with the one line a
person should see. ``CORPUS`` lists every case and the test that exercises it (the count goes into the
closing note); ``cli_cases`` builds the cases that go through the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import POSTGRES_ADMIN_URL


@dataclass(frozen=True)
class CliCase:
    """One command line and the text its single ``error:`` line (or warning) must contain."""

    name: str
    argv: list[str]
    expect: str
    env: dict[str, str | None] = field(default_factory=dict)
    expect_warning: bool = False
    expect_traceback: bool = False  # --debug: the traceback is wanted


#: Every case of the corpus: kind -> the test module that checks it (tests/badinput/...).
CORPUS: dict[str, str] = {
    # settings
    "stockflow.yaml is not YAML": "test_cli, test_settings",
    "stockflow.yaml is a list": "test_cli, test_settings",
    "STOCKFLOW_DATA__SYMBOLS=A,B": "test_cli, test_settings",
    "data.start=yesterday": "test_cli, test_settings",
    "STOCKFLOW_CONFIG names a missing file": "test_cli, test_settings",
    "STOCKFLOW_* variable matching no setting (warning)": "test_cli, test_settings",
    "data.start after data.end": "test_settings",
    "live_trading_confirmed=true alone": "test_settings",
    "empty or weak PREFECT_SERVER_API_AUTH_STRING on a public bind": "test_settings",
    # databases (SQLite and PostgreSQL where it applies)
    "bad database URL": "test_cli, test_store",
    "unreachable database": "test_cli, test_store",
    "read-only database": "test_store",
    "read-only database: state set HALTED": "test_cli",
    "lost PostgreSQL connection": "test_store",
    "full disk (database full, ENOSPC)": "test_store",
    "SQLite store deleted mid-run": "test_store",
    "SQLite store replaced mid-run": "test_store",
    # Prefect and the calendar
    "unreachable Prefect API": "test_cli",
    "--as-of beyond the exchange calendar": "test_cli",
    "failing ingest flow: one line in the flow log, no Prefect traceback": "test_cli",
    "--debug shows the traceback of an expected error": "test_cli",
    # files and values
    "--start after --end": "test_cli, test_files",
    "missing --path": "test_cli",
    "ragged row": "test_files",
    "semicolon-separated CSV": "test_files",
    "file larger than data.max_file_mb": "test_files",
    "gzip larger than data.max_file_mb once decompressed": "test_files",
    "bar dated 0001-01-01": "test_files",
    "bar dated 1850 (and the genuine next bar kept)": "test_files",
    "high x100": "test_files",
    "low /100": "test_files",
    "volume x1000": "test_files",
    "high=1e308": "test_files",
    "volume=1e300": "test_files",
    "one bad file among good ones (judged per file/symbol)": "test_files",
    "unusable reports directory": "test_files",
    "concurrent ingests store quarantine rows once": "test_files",
    # repair
    "restated values reported, replaced on request with an audit row": "test_repair",
    "quarantined bar repaired and released": "test_repair",
    "row with a missing value repaired: stored and its quarantine row released": "test_repair",
    # processes
    "killed ingest / trade run marked crashed on the next start": "test_processes",
    "approve of a paused run whose process is dead": "test_processes",
    "temporary Prefect server outlives a killed command": "test_processes",
}


def cli_cases(tmp: Path) -> list[CliCase]:
    """The command-line cases (files they need are written under ``tmp``)."""
    not_yaml = tmp / "not-yaml.yaml"
    not_yaml.write_text("data: {source: files\nrisk: [\n")
    a_list = tmp / "list.yaml"
    a_list.write_text("- data\n- risk\n")
    ro_db = tmp / "ro.db"
    from stockflow.db import make_engine, upgrade

    eng = make_engine(f"sqlite:///{ro_db}")
    upgrade(eng)
    eng.dispose()
    pg_down = POSTGRES_ADMIN_URL.rsplit("@", 1)[0] + "@127.0.0.1:1/nothing"
    return [
        CliCase("yaml_not_yaml", ["config", "show"], "not valid YAML", {"STOCKFLOW_CONFIG": str(not_yaml)}),
        CliCase("yaml_list", ["config", "show"], "must be a mapping", {"STOCKFLOW_CONFIG": str(a_list)}),
        CliCase(
            "env_list", ["config", "show"], "STOCKFLOW_DATA__SYMBOLS", {"STOCKFLOW_DATA__SYMBOLS": "A,B"}
        ),
        CliCase("date", ["config", "show"], "data.start", {"STOCKFLOW_DATA__START": "yesterday"}),
        CliCase(
            "config_missing",
            ["config", "show"],
            "does not exist",
            {"STOCKFLOW_CONFIG": str(tmp / "nope.yaml")},
        ),
        CliCase(
            "unknown_env",
            ["config", "show"],
            "STOCKFLOW_RISK_STOP_LOSS matches no stockflow setting",
            {"STOCKFLOW_RISK_STOP_LOSS": "0.1"},
            expect_warning=True,
        ),
        CliCase("bad_url", ["state", "show"], "database_url", {"STOCKFLOW_DATABASE_URL": "nosuchdb://x/y"}),
        CliCase("db_down", ["state", "show"], "does not answer", {"STOCKFLOW_DATABASE_URL": pg_down}),
        CliCase(
            "read_only_halt",
            ["state", "set", "HALTED", "--reason", "test"],
            "read-only",
            {"STOCKFLOW_DATABASE_URL": f"sqlite:///file:{ro_db}?mode=ro&uri=true"},
        ),
        CliCase(
            "prefect_down",
            ["ingest", "--source", "sample"],
            "PREFECT_API_URL",
            {"PREFECT_API_URL": "http://127.0.0.1:9/api"},
        ),
        CliCase("as_of", ["run", "--as-of", "2999-01-04"], "outside the XNYS exchange calendar"),
        CliCase("start_after_end", ["ingest", "--start", "2024-02-01", "--end", "2024-01-01"], "after --end"),
        CliCase(
            "missing_path", ["ingest", "--source", "files", "--path", str(tmp / "nowhere")], "does not exist"
        ),
        CliCase(
            "debug_shows_traceback",
            ["--debug", "config", "show"],
            "not valid YAML",
            {"STOCKFLOW_CONFIG": str(not_yaml)},
            expect_traceback=True,
        ),
    ]


CLI_CASES = [
    "yaml_not_yaml",
    "yaml_list",
    "env_list",
    "date",
    "config_missing",
    "unknown_env",
    "bad_url",
    "db_down",
    "read_only_halt",
    "prefect_down",
    "as_of",
    "start_after_end",
    "missing_path",
    "debug_shows_traceback",
]
