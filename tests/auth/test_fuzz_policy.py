import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

TARGET = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_policy.py"
SEEDS = {
    "policy": b"\x00version: 1\nroles:\n  a: {inherits: [b], permissions: ['GET /x/**']}\n",
    "assembled": b"\x01" + bytes(range(64)),
    "path": b"\x02/x/..%2F..;/ADMIN//%2e%2e/admin",
}


def test_the_policy_fuzz_target_runs_five_seconds_without_a_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, seed in SEEDS.items():
        (corpus / name).write_bytes(seed)
    result = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            str(corpus),
            "-max_total_time=5",
            "-max_len=1024",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
