"""Incoming request ids are accepted only when safe to log and echo."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.context import new_request_id, valid_request_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "0f9c7e3e-8a2b-4c1d-9e5f-1a2b3c4d5e6f",
            "0f9c7e3e-8a2b-4c1d-9e5f-1a2b3c4d5e6f",
            id="uuid",
        ),
        pytest.param("01HZX3J5K6M7N8P9Q0R1S2T3V4", "01HZX3J5K6M7N8P9Q0R1S2T3V4", id="ulid"),
        pytest.param(b"abc+/=", "abc+/=", id="bytes-base64"),
        pytest.param("a" * 128, "a" * 128, id="max-length"),
        pytest.param("a" * 129, None, id="too-long"),
        pytest.param("", None, id="empty"),
        pytest.param("a b", None, id="space"),
        pytest.param("a\nb", None, id="newline"),
        pytest.param("<x>", None, id="markup"),
        pytest.param(b"\xff\xfe", None, id="non-ascii-bytes"),
        pytest.param("é", None, id="non-ascii"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_request_id_validation(value: str | bytes | None, expected: str | None) -> None:
    assert valid_request_id(value) == expected


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_validation_never_raises_and_accepts_only_safe_text(value: str | bytes) -> None:
    result = valid_request_id(value)
    assert result is None or (1 <= len(result) <= 128 and result.isascii() and " " not in result)


def test_new_ids_are_unique_and_valid() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(valid_request_id(i) == i for i in ids)
