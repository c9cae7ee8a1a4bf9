"""Runs ``stockflow`` (the console entry point, ``stockflow.cli.main``) once per case in ONE process.

Used by ``test_cli.py`` in a subprocess: each case is (name, argv, environment overrides); for each,
this prints one JSON line with the exit code and everything written to stderr. Batching keeps the
suite fast (one interpreter start instead of one per case) while every case still goes through the
real entry point, its error handling and its logging.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def run_case(argv: list[str], env: dict[str, str | None]) -> tuple[int, str]:
    """Run the CLI with ``argv`` under ``env`` overrides (None removes a variable)."""
    from stockflow.cli import main

    saved = dict(os.environ)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    err, out = io.StringIO(), io.StringIO()
    code = 0
    sys.argv = ["stockflow", *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, err.getvalue()


if __name__ == "__main__":
    cases = json.loads(sys.stdin.read())
    for name, argv, env in cases:
        code, err = run_case(argv, env)
        print(json.dumps({"name": name, "code": code, "stderr": err}), flush=True)
