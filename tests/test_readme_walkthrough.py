"""The README's quick start and approval walkthrough, executed literally from a fresh clone (issue 11).

Runs ``scripts/readme_walkthrough.py``: clone the committed HEAD, ``make run`` (uv installs the locked
environment from its cache in seconds), then the "Approving trades" block under a pseudo-terminal,
answering like a person. About 3-4 minutes on two cores; marked slow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout: nothing to clone"),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]


def test_readme_quick_start_and_approval_walkthrough_from_a_fresh_clone(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_walkthrough.py"), "--keep", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, done.stdout[-5000:]
    assert "approve MSFT: BUY" in out or "? [y/N]" in out
    assert "sent: approved" in out and "1 order(s) sent" in out
