"""A benchmark variant in its own interpreter, answering one JSON line per command.

Each variant runs in a fresh process so global state (the OpenTelemetry
provider, logging factories, prometheus' default registry, warmed caches)
never leaks between variants; the parent interleaves their rounds.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CHILD_TIMEOUT_S", "BenchChild"]

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 300.0


class BenchChild:
    """``python -m <module> <args…>``: write a command line, read a JSON line back."""

    def __init__(self, name: str, module: str, args: Sequence[str]) -> None:
        from benchmarks.apps import bench_environment

        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=bench_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def ask(self, command: str, timeout_s: float = CHILD_TIMEOUT_S) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            self._stderr.seek(0)
            raise RuntimeError(
                f"benchmark child {self.name!r} gave no answer to {command or 'start'!r}:\n"
                + self._stderr.read()[-4000:]
            )
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            if stream is not None:
                stream.close()
