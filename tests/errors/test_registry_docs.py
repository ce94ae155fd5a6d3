"""The error-code registry and docs/errors.md list the same codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sloguard.errors import REGISTRY, problem_body

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def documented_codes() -> dict[str, int]:
    rows = re.findall(r"^\| `([A-Z]+_\d{3})` \| (\d{3}) \|", DOC.read_text(), flags=re.MULTILINE)
    return {code: int(status) for code, status in rows}


def test_every_registered_code_is_documented_with_its_status() -> None:
    assert documented_codes() == {code: e.status for code, e in REGISTRY.items()}


def test_problem_body_is_rfc9457_with_code_and_request_id() -> None:
    body = json.loads(problem_body("ADM_403", "nope", request_id="r-1"))
    assert body["status"] == 403
    assert body["code"] == "ADM_403"
    assert body["request_id"] == "r-1"
    assert body["type"].endswith("/adm-403")
    assert body["title"]
    assert body["detail"] == "nope"
