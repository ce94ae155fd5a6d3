"""A real package's own test suite, run with every one of its functions traced, still passes.

The package is more-itertools 10.5.0 (pure Python, ~660 tests, 3 s bare): a
suite that leans hard on generators -- ``send``, ``close``, partial
consumption, ``yield from``, lazy argument checks -- which is where a
tracing wrapper is most likely to change behaviour. Its sdist (which ships
the tests) is fetched with pip into the session's temporary directory; the
test is skipped when the package index cannot be reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

PACKAGE, VERSION = "more-itertools", "10.5.0"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("thirdparty")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
         "--disable-pip-version-check", f"{PACKAGE}=={VERSION}", "-d", str(cache)],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    archives = list(cache.glob("*.tar.gz"))
    if done.returncode != 0 or not archives:
        pytest.skip(f"could not download {PACKAGE}=={VERSION}: {done.stderr.strip()[-300:]}")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(cache, filter="data")
    return cache / f"{PACKAGE}-{VERSION}"


def test_more_itertools_own_suite_passes_with_every_function_traced(
    sdist: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trace.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(sdist)]),  # sdist has its own `tests`
        "PYTHONDONTWRITEBYTECODE": "1",
        "SLOGUARD_TEST_TRACE": "more_itertools.**:**",
        "SLOGUARD_TEST_TRACE_OUT": str(out),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-p", "thirdparty_tracing_plugin", "-W", "ignore::DeprecationWarning",
         str(sdist / "tests")],
        cwd=sdist, env=env, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    rewritten = {e["target"] for e in result["report"] if e["outcome"] == "instrumented"}
    assert {"more_itertools.more", "more_itertools.recipes"} <= rewritten
    assert result["spans"] > 10_000
