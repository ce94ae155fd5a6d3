"""The shell sessions of docs/inject.md run for real.

The page shows a small example project as ``py`` blocks whose first line is
``# <file>.py`` and ``console`` sessions that use it. Each session runs as
one bash script in a fresh directory holding those files: ``$ `` lines are
commands, the lines under a command are what it printed. Those lines must
appear in that order in the command's output (other lines may come between);
in them ``...`` stands for any text, a number or a hex id for any other, and
runs of spaces or of table rules for any run. A command ending in ``&``
starts a server in the background; the script waits for its port and its
probe control socket before the next command, and stops it at the end.

The sessions' environment: this venv first on ``PATH`` (``sloguard`` and
``python`` are this checkout's), no ``SLOGUARD_*``/``OTEL_*`` variables from
outside, a private ``XDG_RUNTIME_DIR`` (probe sockets), a free port in place
of ``8000``, unbuffered output, 100 columns, and
``inject.probes.mechanism: codepatch`` so the probe session prints the same
on 3.11 and on 3.12+.

``sh`` blocks list command lines without their output (the server modes
that ``tests/inject/test_run_servers.py`` runs); each ``sloguard run`` line in
them must parse and load its settings, with the command itself not started.
``python`` and ``# sloguard.yaml`` blocks are run by ``test_examples.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from sloguard.cli import probe as probe_cli
from sloguard.cli import run as run_cli
from sloguard.settings import load_settings
from sloguard.settings._inject import InjectSettings
from tests.harness.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "inject.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOC_PORT = "8000"
SESSION_TIMEOUT_S = 60
# Numbers, hex ids and elisions in an expected line match any other of their kind.
VARIABLE = re.compile(r"(\.\.\.|[0-9a-f]{8,}|\d+)")
RULES = re.compile(r"([━─═])\1+")
PRELUDE = """\
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
ready() {
  for _ in $(seq 400); do
    if [ -S "$XDG_RUNTIME_DIR/sloguard/probe-$1.sock" ] &&
      (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "doc-test: the server (pid $1) never got ready" >&2
  exit 1
}
"""


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def fenced(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == language]


def project_files() -> dict[str, str]:
    """The example project: ``py`` blocks by the file name on their first line."""
    files = {}
    for body in fenced("py"):
        first = body.partition("\n")[0]
        assert re.fullmatch(r"# [\w/]+\.py", first), f"a py block must start '# name.py': {first}"
        files[first[2:]] = body
    return files


def steps(session: str) -> list[Step]:
    found: list[Step] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            found.append(Step(line[2:]))
        else:
            found[-1].expected.append(line)
    return found


def sessions() -> list[Any]:
    return [pytest.param(body, id=steps(body)[0].command[:60]) for body in fenced("console")]


def normalize(line: str) -> str:
    return " ".join(RULES.sub(r"\1", line).split())


def _piece(part: str) -> str:
    if part == "...":
        return ".*"
    if part.isdigit():
        return r"\d+"
    if VARIABLE.fullmatch(part):
        return "[0-9a-f]+"
    return re.escape(part)


def pattern(expected: str) -> re.Pattern[str]:
    return re.compile("".join(_piece(part) for part in VARIABLE.split(normalize(expected))))


def missing(expected: list[str], output: str) -> str | None:
    """The first expected line not found in order in ``output``, or None."""
    lines = iter(normalize(line) for line in output.splitlines())
    for line in expected:
        if normalize(line) in ("", "..."):
            continue
        wanted = pattern(line)
        if not any(wanted.match(actual) for actual in lines):
            return line
    return None


def script(session: list[Step], port: str) -> str:
    body = [PRELUDE]
    for index, step in enumerate(session):
        command = step.command.replace(DOC_PORT, port)
        body.append(f"echo '@@step {index}@@'")
        if command.endswith("&"):
            body += [command, "ready $!"]
        else:
            body += [command, 'echo "@@rc $?@@"']
    return "\n".join(body) + "\n"


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short: the probe socket path inside it must stay under AF_UNIX's 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="sgdoc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def session_env(workdir: Path, port: str) -> dict[str, str]:
    dropped = ("SLOGUARD_", "OTEL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    for name in ("PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    runtime = workdir / "run"
    runtime.mkdir(mode=0o700)
    bin_dir = str(Path(sys.executable).parent)
    return {
        **env,
        "PATH": os.pathsep.join([bin_dir, env.get("PATH", os.defpath)]),
        "XDG_RUNTIME_DIR": str(runtime),
        "PORT": port,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "100",
        "SLOGUARD_INJECT__PROBES__MECHANISM": "codepatch",
    }


def run_script(text: str, cwd: Path, env: dict[str, str]) -> str:
    process = subprocess.Popen(
        ["bash", "-c", text],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=SESSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"session did not finish in {SESSION_TIMEOUT_S} s:\n{output}")
    return output


@pytest.mark.parametrize("session", sessions())
def test_console_session_prints_what_the_doc_shows(session: str, workdir: Path) -> None:
    project = workdir / "project"
    project.mkdir()
    for name, source in project_files().items():
        (project / name).write_text(source)
    port = str(free_port())
    session_steps = steps(session)
    output = run_script(script(session_steps, port), project, session_env(workdir, port))
    sections = re.split(r"^@@step \d+@@$", output, flags=re.MULTILINE)[1:]
    assert len(sections) == len(session_steps), output
    for step, section in zip(session_steps, sections, strict=True):
        codes = re.findall(r"^@@rc (\d+)@@$", section, flags=re.MULTILINE)
        assert codes in ([], ["0"]), f"$ {step.command}\nexited {codes}:\n{section}"
        line = missing(step.expected, section)
        assert line is None, f"$ {step.command}\nnever printed:\n{line}\nit printed:\n{section}"


@pytest.mark.parametrize(
    ("expected", "output", "found"),
    [
        pytest.param(["pid 4242 (python x.py)"], "pid 77 (python x.py)", True, id="numbers"),
        pytest.param(['"span_id":"0e79720eb7b102fb"'], '"span_id":"a2804335c7b4"', True, id="hex"),
        pytest.param(["socket .../probe-1.sock"], "socket /tmp/s/probe-9.sock", True, id="elided"),
        pytest.param(["┏━━┳━┓"], "┏━━━━━━┳━━┓", True, id="table-rules"),
        pytest.param(["b", "a"], "a\nb", False, id="order-matters"),
        pytest.param(["skipped (3):"], "failed (3):", False, id="words-matter"),
    ],
)
def test_expected_lines_match_with_variable_parts(
    expected: list[str], output: str, found: bool
) -> None:
    assert (missing(expected, output) is None) is found


def run_lines() -> list[Any]:
    lines = [line for body in fenced("sh") for line in body.splitlines()]
    return [pytest.param(line, id=line[:70]) for line in lines if " sloguard run " in f" {line} "]


@pytest.mark.parametrize("line", run_lines())
def test_listed_sloguard_run_lines_parse_and_load_their_settings(
    line: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    words = shlex.split(line)
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        monkeypatch.setenv(name, value.replace("/tmp/", f"{tmp_path}/"))
    started: list[list[str]] = []
    monkeypatch.setattr(run_cli, "_exec", lambda command, env: started.append(command))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sloguard.yaml").write_text("service:\n  name: shop\n")
    app = typer.Typer()
    run_cli.register(app)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.output
    assert started == [words[words.index("--") + 1 :]]


def test_settings_reference_lists_every_inject_field_with_its_default(tmp_path: Path) -> None:
    [reference] = [body for body in fenced("yaml") if "redact_args" in body]
    path = tmp_path / "sloguard.yaml"
    path.write_text(reference)
    assert load_settings(path, env={}).inject == InjectSettings()
    shown = yaml.safe_load(reference)["inject"]
    assert set(shown) == set(InjectSettings.model_fields)
    for section in ("trace", "tasks", "probes"):
        model = type(getattr(InjectSettings(), section))
        assert set(shown[section]) == set(model.model_fields), section


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("run",), id="run"),
        pytest.param(("probe", "add"), id="probe-add"),
        pytest.param(("probe", "list"), id="probe-list"),
        pytest.param(("probe", "remove"), id="probe-remove"),
    ],
)
def test_every_option_of_the_commands_is_documented(command: tuple[str, ...]) -> None:
    if command == ("run",):
        app = typer.Typer()
        run_cli.register(app)
        app.callback()(lambda: None)
    else:
        app = probe_cli.app
    group: Any = get_command(app)
    params = group.commands[command[-1]].params
    text = DOC.read_text()
    options = [opt for param in params for opt in (*param.opts, *param.secondary_opts)]
    undocumented = [opt for opt in options if opt.startswith("--") and opt not in text]
    assert undocumented == []
