"""Running Python programs the way ``sloguard run`` does, for the inject tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sloguard.cli.run import child_environment
from tests.harness.processes import child_env

__all__ = ["PYTHON", "REPO", "run_python", "sloguard_env"]

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def sloguard_env(
    settings: Mapping[str, Any] | None = None,
    *,
    pythonpath: Sequence[Path] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment ``sloguard run`` gives its command: settings as ``SLOGUARD_*`` JSON."""
    base = child_env({"PYTHONPATH": ":".join(str(p) for p in pythonpath) or None, **(extra or {})})
    return child_environment(base, None, settings or {})


def run_python(
    code: str, env: Mapping[str, str], *, cwd: Path | None = None, args: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", code, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
