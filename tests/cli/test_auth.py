"""``sloguard auth check`` and ``sloguard auth explain``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
from typer.testing import CliRunner

from sloguard.cli import app

runner = CliRunner()
SECRET = "k" * 48
POLICY = """\
version: 1
deny:
  - {route: "/internal/**"}
roles:
  viewer: {permissions: ["GET /products/**"]}
  editor: {inherits: [viewer], permissions: ["POST /products"]}
"""


def policy(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def token(roles: list[str]) -> str:
    claims = {"sub": "alice", "roles": roles, "exp": int(time.time()) + 300}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def explain(tmp_path: Path, *args: str) -> object:
    env = {
        "TEST_SECRET": SECRET,
        "SLOGUARD_AUTH__STATIC_KEYS": "[{env: TEST_SECRET, algorithms: [HS256]}]",
    }
    base = ["auth", "explain", "--policy", str(policy(tmp_path)), "--route", "/products", "--json"]
    return runner.invoke(app, [*base, *args], env=env)


def test_check_accepts_a_valid_policy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["auth", "check", str(policy(tmp_path)), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["roles"] == 2


def test_check_names_line_and_field_and_exits_2(tmp_path: Path) -> None:
    bad = policy(tmp_path, "version: 1\nroles:\n  a: {inherits: [zz]}\n")
    result = runner.invoke(app, ["auth", "check", str(bad), "--json"])
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["where"].endswith(":3")
    assert problem["field"] == "roles.a.inherits.0"


def test_explain_an_allowed_request(tmp_path: Path) -> None:
    result = explain(
        tmp_path, "--method", "POST", "--path", "/products", "--token", token(["editor"])
    )
    assert result.exit_code == 0  # type: ignore[attr-defined]
    body = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert body["decision"]["allowed"] is True
    assert body["principal"] == "alice"


def test_explain_a_denial_exits_1_with_the_rule(tmp_path: Path) -> None:
    result = explain(
        tmp_path, "--method", "POST", "--path", "/products", "--token", token(["viewer"])
    )
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert json.loads(result.stdout)["decision"]["code"] == "AUTH_201"  # type: ignore[attr-defined]


def test_explain_a_denied_route_without_a_token(tmp_path: Path) -> None:
    result = explain(tmp_path, "--path", "/internal/../internal/x")
    assert json.loads(result.stdout)["decision"]["code"] == "AUTH_202"  # type: ignore[attr-defined]


def test_explain_refuses_a_bad_token(tmp_path: Path) -> None:
    result = explain(tmp_path, "--path", "/products", "--token", "x.y.z")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "AUTH_101" in result.output  # type: ignore[attr-defined]
