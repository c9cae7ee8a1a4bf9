"""Execute the README's quick start and approval walkthrough literally, from a fresh clone.

    python scripts/readme_walkthrough.py [--keep DIR]

1. ``git clone`` this repository and check out its current commit (HEAD: uncommitted changes are not
   part of a fresh clone) in a temporary directory;
2. take the shell blocks of the README's "Quick start" and "Approving trades" sections, as written;
3. run them in order in that clone with bash (``make test`` is skipped: it is the suite that runs this);
   the approval walkthrough asks in the terminal, so it runs under a pseudo-terminal and answers like a
   person: approve the first order, reject the others, add a note;
4. check that the walkthrough reached the approval prompt and that exactly one order was sent.

Exit status 0 when every step worked; the transcript is printed. tests/test_readme_walkthrough.py runs it.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"make test": "it is the test suite that runs this walkthrough"}


def readme_blocks(readme: str, heading: str) -> list[str]:
    """The ```bash blocks of the section whose heading starts with ``heading`` (up to the next heading
    of the same or a higher level)."""
    m = re.search(rf"^(#+) {re.escape(heading)}.*$", readme, flags=re.M)
    if m is None:
        raise SystemExit(f"README has no section {heading!r}")
    level = len(m.group(1))
    rest = readme[m.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    section = rest[: end.start()] if end else rest
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def commands(block: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, comments after commands kept (bash ignores
    them), commands in SKIP left out."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        cmd = line.split("  #")[0].strip()
        if not cmd or cmd.startswith("#"):
            continue
        if cmd in SKIP:
            print(f"walkthrough: skipping `{cmd}`: {SKIP[cmd]}", flush=True)
            continue
        out.append(line.strip())
    return out


def run_in_pty(script: str, cwd: Path, env: dict[str, str], timeout_s: float) -> tuple[int, str]:
    """Run ``bash -c script`` in a pseudo-terminal, answering the approval prompts; (status, transcript)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(cwd)
        os.execvpe("bash", ["bash", "-c", script], env)
    transcript = b""
    answered = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()
        transcript += chunk
        text = transcript.decode(errors="replace")
        prompts = re.findall(r"approve [^\n]*\? \[y/N\]", text)
        while answered < len(prompts):
            os.write(fd, b"y\n" if answered == 0 else b"n\n")
            answered += 1
        if text.rstrip().endswith("note (optional):") and "walkthrough-note" not in text:
            os.write(fd, b"README walkthrough-note\n")
            transcript += b"\n[walkthrough-note sent]\n"
    else:
        os.kill(pid, 9)
        return 124, transcript.decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """Clone, run the README's blocks, check the outcome. Returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="clone into DIR and keep it")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for each section")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="stockflow-readme-"))
    clone = base / "stockflow"
    if clone.exists():
        shutil.rmtree(clone)
    # The commit checked out here (a worktree's clone would otherwise get the repository's default branch).
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True)
    print(f"walkthrough: fresh clone of {head[:12]} in {clone}", flush=True)
    readme = (clone / "README.md").read_text(encoding="utf-8")
    quick = [c for b in readme_blocks(readme, "Quick start") for c in commands(b)]
    # The walkthrough is the block that sets the demo settings, whole and in order.
    walkthrough = next(commands(b) for b in readme_blocks(readme, "Approving trades") if "SIGNAL_SOURCE" in b)
    # As on a fresh machine: nothing of this process's Prefect home, settings file or STOCKFLOW_* settings.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOCKFLOW_", "PREFECT_")) or k.startswith("STOCKFLOW_TEST_")
    }
    env.update({"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TERM": "dumb"})
    t0 = time.perf_counter()
    print(f"walkthrough: quick start in {clone}: {quick}", flush=True)
    done = subprocess.run(
        ["bash", "-ec", "\n".join(quick)], check=False, cwd=clone, env=env, timeout=args.timeout
    )
    if done.returncode != 0:
        print(f"walkthrough: FAILED: the quick start exited {done.returncode}")
        return 1
    t1 = time.perf_counter()
    print(f"\nwalkthrough: approval walkthrough: {walkthrough}", flush=True)
    code, out = run_in_pty("set -e\n" + "\n".join(walkthrough), clone, env, args.timeout)
    t2 = time.perf_counter()
    problems = []
    if code != 0:
        problems.append(f"the approval walkthrough exited {code}")
    if not re.search(r"approve [^\n]*\? \[y/N\]", out):
        problems.append("no order reached the approval prompt")
    if "sent: approved" not in out:
        problems.append("no approval was sent")
    if not re.search(r"trade run: \w+ - .*\b1 order\(s\) sent", out):
        problems.append("the run did not end with exactly one order sent")
    print(f"\nwalkthrough: quick start {t1 - t0:.0f}s, approval walkthrough {t2 - t1:.0f}s")
    for p in problems:
        print(f"walkthrough: FAILED: {p}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
