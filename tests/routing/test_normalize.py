import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.routing import PathError, normalize_path

STRIP: dict[str, Any] = {}
KEEP: dict[str, Any] = {"trailing_slash": "keep"}
LOWER: dict[str, Any] = {"lowercase": True}
RAW_PARAMS: dict[str, Any] = {"strip_params": False}

CASES = [
    # dot segments, literal and encoded
    pytest.param("/admin/../x", STRIP, "/x", id="dotdot-climbs-out-of-admin"),
    pytest.param("/%2e%2e/admin", STRIP, "/admin", id="encoded-dotdot-at-root"),
    pytest.param("/x/%2E%2E/admin", STRIP, "/admin", id="encoded-uppercase-dotdot"),
    pytest.param("/x/.%2e/admin", STRIP, "/admin", id="half-encoded-dotdot"),
    pytest.param("/x/%2e/admin", STRIP, "/x/admin", id="encoded-single-dot"),
    pytest.param("/a/./b", STRIP, "/a/b", id="single-dot-segment"),
    pytest.param("/a/b/../../..", STRIP, "/", id="dotdot-never-climbs-above-root"),
    pytest.param("/../../etc/passwd", STRIP, "/etc/passwd", id="leading-dotdots"),
    pytest.param("/a/b/..", KEEP, "/a/", id="final-dotdot-leaves-a-directory"),
    pytest.param("/a//../b", STRIP, "/a/b", id="dotdot-removes-an-empty-segment-as-rfc3986"),
    pytest.param("/a/..b/c.", STRIP, "/a/..b/c.", id="dots-inside-names-stay"),
    pytest.param("/.well-known/x", STRIP, "/.well-known/x", id="dot-prefixed-name-stays"),
    # slashes
    pytest.param("//admin", STRIP, "/admin", id="double-leading-slash"),
    pytest.param("/a///b////c", STRIP, "/a/b/c", id="repeated-slashes-collapse"),
    pytest.param("/admin/", STRIP, "/admin", id="trailing-slash-stripped"),
    pytest.param("/admin/", KEEP, "/admin/", id="trailing-slash-kept"),
    pytest.param("/admin//", KEEP, "/admin/", id="kept-trailing-slashes-collapse"),
    pytest.param("/", STRIP, "/", id="root-keeps-its-slash"),
    pytest.param("", STRIP, "/", id="empty-path-is-root"),
    pytest.param("admin", STRIP, "/admin", id="leading-slash-added"),
    # params
    pytest.param("/admin;jsessionid=1", STRIP, "/admin", id="jsessionid-param"),
    pytest.param("/admin;x=1/users", STRIP, "/admin/users", id="param-mid-path"),
    pytest.param("/x/..;/admin", STRIP, "/admin", id="tomcat-dotdot-semicolon"),
    pytest.param("/admin;/", STRIP, "/admin", id="empty-param"),
    pytest.param("/admin;x=1", RAW_PARAMS, "/admin;x=1", id="params-kept-when-asked"),
    pytest.param("/admin%3Bx", STRIP, "/admin%3Bx", id="encoded-semicolon-is-not-a-param"),
    # case
    pytest.param("/ADMIN", LOWER, "/admin", id="lowercase-option"),
    pytest.param("/ADMIN", STRIP, "/ADMIN", id="case-kept-by-default"),
    pytest.param("/A%2fB%c3%a9", LOWER, "/a%2Fb%C3%A9", id="lowercase-keeps-hex-uppercase"),
    # percent-encoding
    pytest.param("/admin%2Fx", STRIP, "/admin%2Fx", id="encoded-slash-stays-encoded"),
    pytest.param("/admin%2fx", STRIP, "/admin%2Fx", id="encoded-slash-hex-uppercased"),
    pytest.param("/%61dmin", STRIP, "/admin", id="encoded-letter-decoded"),
    pytest.param("/%41%7e%2D%5f%30", STRIP, "/A~-_0", id="all-unreserved-kinds-decoded"),
    pytest.param("/a%20b", STRIP, "/a%20b", id="encoded-space-stays"),
    pytest.param("/a b", STRIP, "/a%20b", id="literal-space-encoded"),
    pytest.param("/%00", STRIP, "/%00", id="encoded-nul-stays"),
    pytest.param("/a\x00b\x7f", STRIP, "/a%00b%7F", id="controls-encoded"),
    pytest.param("/%zz", STRIP, "/%25zz", id="malformed-escape"),
    pytest.param("/%2", STRIP, "/%252", id="truncated-escape"),
    pytest.param("/%", STRIP, "/%25", id="lone-percent"),
    pytest.param("/%25", STRIP, "/%25", id="encoded-percent-stays"),
    pytest.param("/%252e%252e/x", STRIP, "/%252e%252e/x", id="double-encoding-not-decoded-twice"),
    pytest.param("/a\\..\\b", STRIP, "/a%5C..%5Cb", id="backslash-is-not-a-separator"),
    pytest.param("/caf\u00e9", STRIP, "/caf%C3%A9", id="non-ascii-text"),
    pytest.param(b"/caf\xc3\xa9\xff", STRIP, "/caf%C3%A9%FF", id="non-ascii-and-invalid-bytes"),
    pytest.param("/\ud800", STRIP, "/%ED%A0%80", id="lone-surrogate"),
    pytest.param("/a{b}|<c>", STRIP, "/a%7Bb%7D%7C%3Cc%3E", id="unsafe-ascii-encoded"),
    pytest.param("/a:b@c!$&'()*+,=", STRIP, "/a:b@c!$&'()*+,=", id="sub-delims-stay-literal"),
    # query
    pytest.param("/admin?x=/../y", STRIP, "/admin", id="query-cut"),
    pytest.param(b"/admin/?", STRIP, "/admin", id="empty-query-cut"),
    pytest.param("/admin%3Fx", STRIP, "/admin%3Fx", id="encoded-question-mark-is-not-a-query"),
    pytest.param(b"/items/42", STRIP, "/items/42", id="bytes-input"),
]


@pytest.mark.parametrize(("raw", "options", "expected"), CASES)
def test_normalize_path_gives_the_canonical_form(
    raw: str | bytes, options: dict[str, Any], expected: str
) -> None:
    assert normalize_path(raw, **options) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        "/admin",
        "//admin",
        "/admin/",
        "/x/../admin",
        "/%61dmin",
        "/admin;a=b",
        "/./admin",
        "/%2e/admin",
    ],
)
def test_every_spelling_of_admin_normalizes_to_admin(spelling: str) -> None:
    assert normalize_path(spelling) == "/admin"
    assert normalize_path(spelling.encode()) == "/admin"


def test_an_unknown_trailing_slash_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="trailing_slash"):
        normalize_path("/a", trailing_slash="drop")  # type: ignore[arg-type]


def test_path_error_carries_the_path_and_the_reason() -> None:
    error = PathError("/a/{", "a stray brace")
    assert isinstance(error, ValueError)
    assert (error.path, error.reason) == ("/a/{", "a stray brace")
    assert "/a/{" in str(error)


PIECES = st.sampled_from([*"/.;%?aAzZ2eEfF0~-\\ \x00é", "%2e", "%2F", "..", "/../", ";x=1"])
PATHISH = st.lists(PIECES, max_size=20).map("".join)
ANY_PATH = st.one_of(PATHISH, st.text(), st.binary(), PATHISH.map(str.encode))
OPTIONS = st.fixed_dictionaries(
    {
        "trailing_slash": st.sampled_from(["strip", "keep"]),
        "strip_params": st.booleans(),
        "lowercase": st.booleans(),
    }
)
CANONICAL = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*")


@given(ANY_PATH, OPTIONS)
def test_normalizing_twice_changes_nothing(raw: str | bytes, options: dict[str, Any]) -> None:
    once = normalize_path(raw, **options)
    assert normalize_path(once, **options) == once
    assert normalize_path(once.encode(), **options) == once


@given(ANY_PATH, OPTIONS)
def test_normalized_paths_are_absolute_collapsed_and_free_of_dot_segments(
    raw: str | bytes, options: dict[str, Any]
) -> None:
    path = normalize_path(raw, **options)
    assert path.startswith("/")
    assert "//" not in path
    assert not {".", ".."} & set(path.split("/"))
    assert CANONICAL.fullmatch(path)


@given(ANY_PATH)
def test_stripping_params_leaves_no_semicolon(raw: str | bytes) -> None:
    assert ";" not in normalize_path(raw, strip_params=True)


@given(ANY_PATH)
def test_stripped_paths_end_without_a_slash_unless_root(raw: str | bytes) -> None:
    path = normalize_path(raw)
    assert path == "/" or not path.endswith("/")


UNRESERVED_PATH = st.text(alphabet="/.-_~aZ09", max_size=30)


@given(UNRESERVED_PATH, st.data())
def test_percent_encoding_unreserved_characters_changes_nothing(
    raw: str, data: st.DataObject
) -> None:
    spelled = "".join(
        data.draw(st.sampled_from([ch, f"%{ord(ch):02x}", f"%{ord(ch):02X}"])) if ch != "/" else ch
        for ch in raw
    )
    assert normalize_path(spelled) == normalize_path(raw)
