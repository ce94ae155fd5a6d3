"""Admin endpoints: live sampling changes and reloads, loopback only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sloguard.asgi import guard
from tests.asgi.conftest import Harness, shop_app


def test_sampling_can_be_read_and_changed_live(harness: Harness) -> None:
    assert harness.get("/-/sloguard/sampling").json()["ratio"] == 1.0
    response = harness.request(
        "PUT", "/-/sloguard/sampling", json={"ratio": 0.0, "route_ratios": {"/whoami": 1.0}}
    )
    assert response.status_code == 200
    harness.get("/items/1")
    harness.get("/whoami")
    assert [s.name for s in harness.spans()] == ["GET /whoami"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"ratio": 2}, "ratio", id="range"),
        pytest.param({"ratio": 0.5, "extra": 1}, "extra", id="unknown"),
        pytest.param({}, "ratio", id="missing"),
    ],
)
def test_invalid_sampling_update_is_a_problem_and_changes_nothing(
    harness: Harness, body: dict, field: str
) -> None:
    response = harness.request("PUT", "/-/sloguard/sampling", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "ADM_400"
    assert field in response.json()["detail"]
    assert harness.get("/-/sloguard/sampling").json()["ratio"] == 1.0


def test_admin_refuses_non_loopback_callers(harness: Harness) -> None:
    response = harness.request(
        "PUT", "/-/sloguard/sampling", json={"ratio": 0.0}, client="198.51.100.7"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "ADM_403"


def test_unknown_admin_path_and_method(harness: Harness) -> None:
    assert harness.get("/-/sloguard/nope").json()["code"] == "ADM_404"
    assert harness.request("DELETE", "/-/sloguard/sampling").json()["code"] == "ADM_405"


def test_reload_applies_new_ratios_and_a_bad_file_keeps_the_old(
    tmp_path: Path, make_harness: Callable[..., Harness]
) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("tracing:\n  sample_ratio: 1.0\nlogging:\n  configure_root: false\n")
    harness = make_harness()
    harness.guard = guard(shop_app(), settings_path=config)
    config.write_text("tracing:\n  sample_ratio: 0.25\nlogging:\n  configure_root: false\n")
    assert harness.request("POST", "/-/sloguard/reload").status_code == 200
    assert harness.get("/-/sloguard/sampling").json()["ratio"] == 0.25
    config.write_text("tracing:\n  sample_ratio: 7\n")
    response = harness.request("POST", "/-/sloguard/reload")
    assert response.status_code == 400
    assert "sample_ratio" in response.json()["detail"]
    assert harness.get("/-/sloguard/sampling").json()["ratio"] == 0.25
    harness.guard.close()
