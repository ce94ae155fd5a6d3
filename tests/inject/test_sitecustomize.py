"""sloguard's sitecustomize: bootstrap first, then the user's own sitecustomize, as before."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.inject.sloguard_run import run_python, sloguard_env

USER_SITE = """
import sys
from sloguard.inject import _bootstrap
BOOTSTRAPPED_FIRST = _bootstrap.active()
print("user sitecustomize ran", file=sys.stderr)
"""


def user_dir(tmp_path: Path, body: str = USER_SITE, name: str = "sitecustomize.py") -> Path:
    directory = tmp_path / "user"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(body)
    return directory


def test_the_users_sitecustomize_runs_after_the_bootstrap(tmp_path: Path) -> None:
    env = sloguard_env(pythonpath=[user_dir(tmp_path)])
    result = run_python("import sitecustomize; print(sitecustomize.BOOTSTRAPPED_FIRST)", env)
    assert result.stdout == "True\n", result.stderr
    assert result.stderr.count("user sitecustomize ran") == 1


def test_the_users_sitecustomize_keeps_its_file_and_name(tmp_path: Path) -> None:
    directory = user_dir(tmp_path)
    env = sloguard_env(pythonpath=[directory])
    result = run_python("import sitecustomize as s; print(s.__name__, s.__file__)", env)
    assert result.stdout.split() == ["sitecustomize", str(directory / "sitecustomize.py")]


def test_an_error_in_the_users_sitecustomize_reaches_site_as_before(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, "raise RuntimeError('user site is broken')\n")
    result = run_python("print('ran')", sloguard_env(pythonpath=[directory]))
    assert result.stdout == "ran\n"
    assert "Error in sitecustomize" in result.stderr
    assert "user site is broken" in result.stderr


def test_without_a_user_sitecustomize_the_program_just_runs() -> None:
    code = "from sloguard.inject import _bootstrap; print(_bootstrap.active())"
    result = run_python(code, sloguard_env())
    assert (result.stdout, result.stderr) == ("True\n", "")


def test_usercustomize_is_left_to_site(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, "print('usercustomize ran')\n", name="usercustomize.py")
    code = "import site, sys; print(site.ENABLE_USER_SITE, 'usercustomize' in sys.modules)"
    plain = run_python(code, sloguard_env(pythonpath=[directory]) | {"PYTHONPATH": str(directory)})
    ours = run_python(code, sloguard_env(pythonpath=[directory]))
    assert ours.stdout == plain.stdout


def other_python() -> str | None:
    """An interpreter that cannot import sloguard (pyenv's 3.12, without our venv)."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    prefix = subprocess.run(
        [pyenv, "prefix", "3.12.1"], capture_output=True, text=True, check=False
    ).stdout.strip()
    python = Path(prefix, "bin", "python")
    return str(python) if prefix and python.exists() else None


@pytest.mark.parametrize(
    ("explain", "says"),
    [pytest.param(False, False, id="quiet"), pytest.param(True, True, id="explain")],
)
def test_an_interpreter_without_sloguard_runs_untouched(explain: bool, says: bool) -> None:
    python = other_python()
    if python is None:
        pytest.skip("pyenv's Python 3.12.1 is not installed")
    env = sloguard_env({"SLOGUARD_INJECT__EXPLAIN": explain})
    result = subprocess.run(
        [python, "-c", "print('ok')"], env=env, capture_output=True, text=True, check=False
    )
    assert result.stdout == "ok\n"
    assert ("running uninstrumented" in result.stderr) is says
