import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.auth._errors import MalformedToken, MissingToken
from sloguard.auth._tokens import extract_token, split_token

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: Any, payload: bytes = b"{}", signature: bytes = b"sig") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(signature)}"


def with_header(raw: bytes) -> str:
    return f"{b64(raw)}.e30.c2ln"


@pytest.mark.parametrize(
    ("headers", "query", "options", "expected"),
    [
        pytest.param({"authorization": f"Bearer {TOKEN}"}, "", {}, TOKEN, id="bearer"),
        pytest.param({"authorization": f"bearer {TOKEN}"}, "", {}, TOKEN, id="scheme-lowercase"),
        pytest.param({"authorization": f"BEARER  {TOKEN} "}, "", {}, TOKEN, id="extra-spaces"),
        pytest.param(
            {"cookie": f"a=1; session={TOKEN}"}, "", {"cookie_name": "session"}, TOKEN, id="cookie"
        ),
        pytest.param(
            {"authorization": f"Bearer {TOKEN}", "cookie": "session=other.x.y"},
            "",
            {"cookie_name": "session"},
            TOKEN,
            id="header-wins-over-cookie",
        ),
        pytest.param({}, f"access_token={TOKEN}", {"allow_query": True}, TOKEN, id="query-enabled"),
        pytest.param(
            {},
            f"t={TOKEN}".encode(),
            {"allow_query": True, "query_param": "t"},
            TOKEN,
            id="query-bytes",
        ),
    ],
)
def test_extract_token_finds_the_one_credential(
    headers: dict[str, str], query: str, options: dict[str, Any], expected: str
) -> None:
    assert extract_token(headers, query, **options) == expected


@pytest.mark.parametrize(
    ("headers", "query", "options", "error"),
    [
        pytest.param({}, "", {}, MissingToken, id="nothing"),
        pytest.param({"authorization": "Basic dTpw"}, "", {}, MissingToken, id="basic-scheme"),
        pytest.param({}, f"access_token={TOKEN}", {}, MissingToken, id="query-not-enabled"),
        pytest.param(
            {"cookie": f"session={TOKEN}"}, "", {}, MissingToken, id="cookie-not-configured"
        ),
        pytest.param({"authorization": "Bearer"}, "", {}, MalformedToken, id="empty-bearer"),
        pytest.param({"authorization": "Bearer a b"}, "", {}, MalformedToken, id="two-credentials"),
        pytest.param(
            {"authorization": f"Bearer {TOKEN}, Bearer {TOKEN}"},
            "",
            {},
            MalformedToken,
            id="repeated-header-joined",
        ),
        pytest.param({"authorization": "Bearer a\tb"}, "", {}, MalformedToken, id="tab-inside"),
        pytest.param({"authorization": "Bearer tök"}, "", {}, MalformedToken, id="non-ascii"),
        pytest.param(
            {"authorization": "Bearer a=b"}, "", {}, MalformedToken, id="padding-mid-token"
        ),
        pytest.param(
            {"authorization": "Bearer " + "a" * 9000}, "", {}, MalformedToken, id="oversized"
        ),
        pytest.param(
            {"authorization": "Bearer " + "a" * 101},
            "",
            {"max_bytes": 100},
            MalformedToken,
            id="over-custom-limit",
        ),
        pytest.param(
            {"authorization": f"Bearer {TOKEN}"},
            f"access_token={TOKEN}",
            {"allow_query": True},
            MalformedToken,
            id="header-and-query",
        ),
        pytest.param(
            {},
            "access_token=a&access_token=b",
            {"allow_query": True},
            MalformedToken,
            id="query-twice",
        ),
        pytest.param(
            {"cookie": "session=a.b.c; session=x.y.z"},
            "",
            {"cookie_name": "session"},
            MalformedToken,
            id="cookie-tossing",
        ),
    ],
)
def test_extract_token_refuses_missing_or_ambiguous_credentials(
    headers: dict[str, str], query: str, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        extract_token(headers, query, **options)
    assert type(caught.value) is error
    assert "aaaa" not in str(caught.value)


def test_split_token_returns_the_decoded_header_and_raw_segments() -> None:
    header, payload, signature = split_token(TOKEN)
    assert header == {"alg": "HS256"}
    assert (payload, signature) == ("eyJzdWIiOiJ1In0", "c2ln")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("a.b", id="two-segments"),
        pytest.param(f"{TOKEN}.x", id="four-segments"),
        pytest.param("..", id="empty-segments"),
        pytest.param(TOKEN.replace("eyJzdWIiOiJ1In0", ""), id="empty-payload"),
        pytest.param(TOKEN + "=", id="padding"),
        pytest.param(" " + TOKEN, id="leading-space"),
        pytest.param(TOKEN.replace(".", ". "), id="inner-space"),
        pytest.param(TOKEN.replace("c2ln", "c2l+"), id="standard-base64-plus"),
        pytest.param(TOKEN.replace("c2ln", "c2lnZ"), id="impossible-length"),
        pytest.param(TOKEN.replace("c2ln", "c2lnZB"), id="non-canonical-trailing-bits"),
        pytest.param(with_header(b"not json"), id="header-not-json"),
        pytest.param(with_header(b"[1]"), id="header-not-object"),
        pytest.param(with_header(b'{"alg":"HS256","alg":"none"}'), id="duplicate-alg"),
        pytest.param(with_header(b"\xff\xfe"), id="header-not-utf8"),
        pytest.param(with_header(b"[" * 5000), id="deeply-nested-header"),
    ],
)
def test_split_token_refuses_anything_but_three_canonical_segments(token: str) -> None:
    with pytest.raises(MalformedToken):
        split_token(token)


def test_split_token_accepts_an_empty_signature_so_alg_none_gets_its_own_code() -> None:
    header, _, signature = split_token(compact({"alg": "none"}, signature=b""))
    assert header == {"alg": "none"}
    assert signature == ""


@given(st.text(max_size=300))
def test_split_token_raises_nothing_but_malformed_token_on_any_text(text: str) -> None:
    with contextlib.suppress(MalformedToken):
        split_token(text)


@given(st.text(alphabet="ABCxyz019-_.=", max_size=60))
def test_split_token_raises_nothing_but_malformed_token_on_near_miss_text(text: str) -> None:
    with contextlib.suppress(MalformedToken):
        split_token(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    st.binary(min_size=1, max_size=64),
    st.binary(max_size=64),
)
def test_split_token_round_trips_valid_tokens(
    header: dict[str, Any], payload: bytes, signature: bytes
) -> None:
    token = compact(header, payload, signature)
    parsed, payload_b64, signature_b64 = split_token(token)
    assert parsed == header
    assert base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)) == payload
    assert base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4)) == signature
