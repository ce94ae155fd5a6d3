import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.routing import (
    MAX_CACHED_PATH_LENGTH,
    UNMATCHED,
    PathError,
    RouteTable,
    RouteTemplate,
    normalize_path,
)

SHOP = RouteTable(
    [
        "/",
        "/admin",
        "/admin/users/{user_id:int}",
        "/items/{item_id}",
        "/items/{item_id:int}",
        "/items/{item_id}.json",
        "/items/special",
        "/orders/{order_id:uuid}",
        "/prices/{amount:float}",
        "/files/{file_path:path}",
        "/files/{file_path:path}/raw",
        "/{org}/settings",
        "/acme/{page}",
    ]
)
AN_ID = "12345678-1234-5678-1234-567812345678"


@pytest.mark.parametrize(
    ("raw", "template"),
    [
        pytest.param("/", "/", id="root"),
        pytest.param("/items/special", "/items/special", id="static-beats-parameter"),
        pytest.param("/items/42", "/items/{item_id:int}", id="int-beats-str"),
        pytest.param("/items/shoe", "/items/{item_id}", id="str-parameter"),
        pytest.param("/items/42.json", "/items/{item_id}.json", id="mixed-segment-beats-parameter"),
        pytest.param("/items/a%2Fb", "/items/{item_id}", id="encoded-slash-stays-in-the-parameter"),
        pytest.param("/items/a/b", UNMATCHED, id="str-never-spans-a-slash"),
        pytest.param(f"/orders/{AN_ID}", "/orders/{order_id:uuid}", id="uuid"),
        pytest.param(f"/orders/{AN_ID.upper()}", "/orders/{order_id:uuid}", id="uppercase-uuid"),
        pytest.param("/orders/not-a-uuid", UNMATCHED, id="uuid-rejects-other-text"),
        pytest.param("/prices/1.5", "/prices/{amount:float}", id="float-with-fraction"),
        pytest.param("/prices/3", "/prices/{amount:float}", id="float-without-fraction"),
        pytest.param("/prices/-3", UNMATCHED, id="float-rejects-a-sign"),
        pytest.param("/files/a/b/c.txt", "/files/{file_path:path}", id="path-spans-slashes"),
        pytest.param("/files", "/files/{file_path:path}", id="path-matches-its-bare-prefix"),
        pytest.param("/files/a/raw", "/files/{file_path:path}/raw", id="longer-path-template-wins"),
        pytest.param("/acme/settings", "/acme/{page}", id="leftmost-static-segment-wins"),
        pytest.param("/globex/settings", "/{org}/settings", id="parameter-then-static"),
        pytest.param("/nowhere/at/all", UNMATCHED, id="unmatched"),
    ],
)
def test_resolve_finds_the_most_specific_template(raw: str, template: str) -> None:
    assert SHOP.resolve(raw) == template
    assert SHOP.resolve(raw.encode()) == template


@pytest.mark.parametrize(
    "raw",
    ["/admin/", "//admin", "/x/../admin", "/%2e%2e/admin", "/admin;jsessionid=1", "/%61dmin"],
)
def test_bypass_spellings_resolve_to_the_guarded_template(raw: str) -> None:
    assert SHOP.resolve(raw) == "/admin"


@pytest.mark.parametrize(
    "raw", ["/admin%2Fusers/1", "/admin/users%2F1", "/admin/users/1%2F", "/admin%2fusers%2f1"]
)
def test_encoded_slashes_never_split_a_segment(raw: str) -> None:
    assert "%2F" in normalize_path(raw)
    assert SHOP.resolve(raw) == UNMATCHED


def test_bypass_spellings_of_a_dynamic_path_resolve_to_its_template() -> None:
    for raw in ("/admin/x/../users/1;a", "//admin//users/%31/", "/%61dmin/./users/1"):
        assert SHOP.resolve(raw) == "/admin/users/{user_id:int}"


def test_equally_specific_templates_keep_their_declared_order() -> None:
    first = RouteTable(["/users/{name}", "/users/{user_id}"])
    second = RouteTable(["/users/{user_id}", "/users/{name}"])
    assert first.resolve("/users/ann") == "/users/{name}"
    assert second.resolve("/users/ann") == "/users/{user_id}"


def test_templates_are_normalized_and_deduplicated_when_loaded() -> None:
    table = RouteTable(["//api/%7eme/", "/api/~me", "/api/{x}/", "/caf\u00e9"])
    assert table.templates == ("/api/~me", "/api/{x}", "/caf%C3%A9")
    assert table.resolve("/api/%7Eme") == "/api/~me"
    assert table.resolve("/caf%c3%a9") == "/caf%C3%A9"


def test_a_repeated_parameter_name_from_nested_mounts_is_accepted() -> None:
    table = RouteTable(["/{id}/items/{id:int}"])
    assert table.resolve("/acme/items/3") == "/{id}/items/{id:int}"


def test_kept_trailing_slashes_must_match_exactly() -> None:
    table = RouteTable(["/dir/", "/file"], trailing_slash="keep")
    assert table.templates == ("/dir/", "/file")
    assert [table.resolve(p) for p in ("/dir/", "/dir", "/file/", "/file")] == [
        "/dir/",
        UNMATCHED,
        UNMATCHED,
        "/file",
    ]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        pytest.param("items", "start with '/'", id="relative"),
        pytest.param("/items?page=1", "query", id="query"),
        pytest.param("/items/{id", "'{' or '}'", id="unclosed-brace"),
        pytest.param("/items/id}", "'{' or '}'", id="stray-closing-brace"),
        pytest.param("/items/{1id}", "'{' or '}'", id="bad-parameter-name"),
        pytest.param("/items/{id:bool}", "unknown convertor", id="unknown-convertor"),
        pytest.param("/items/../admin", "'..'", id="dotdot-segment"),
        pytest.param("/items/%2e/{id}", "'..'", id="encoded-dot-segment"),
        pytest.param("/items;v=1/{id}", "params", id="semicolon-param"),
    ],
)
def test_an_invalid_template_is_refused_by_name(template: str, reason: str) -> None:
    with pytest.raises(PathError) as caught:
        RouteTable(["/ok", template])
    assert caught.value.path == template
    assert template in str(caught.value)
    assert reason in caught.value.reason


def test_resolve_caches_by_raw_path() -> None:
    table = RouteTable(["/items/{item_id:int}"])
    for _ in range(3):
        assert table.resolve("/items/7") == "/items/{item_id:int}"
    assert table.resolve(b"/items/7") == "/items/{item_id:int}"
    info = table.cache_info()
    assert (info.hits, info.misses, info.currsize, info.maxsize) == (2, 2, 2, 4096)


def test_the_cache_is_bounded_by_max_cached_paths() -> None:
    table = RouteTable(["/items/{item_id:int}"], max_cached_paths=8)
    for number in range(100):
        assert table.resolve(f"/items/{number}") == "/items/{item_id:int}"
    assert table.cache_info().currsize == 8


def test_paths_too_long_to_cache_are_resolved_without_the_cache() -> None:
    table = RouteTable(["/files/{file_path:path}"])
    long_path = "/files/" + "a" * MAX_CACHED_PATH_LENGTH
    assert table.resolve(long_path) == "/files/{file_path:path}"
    assert table.cache_info().currsize == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"max_cached_paths": -1}, "max_cached_paths", id="negative-cache"),
        pytest.param({"trailing_slash": "drop"}, "trailing_slash", id="unknown-slash-mode"),
    ],
)
def test_invalid_table_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTable(["/a"], **options)  # type: ignore[arg-type]


def test_a_table_without_templates_leaves_everything_unmatched() -> None:
    table = RouteTable([], max_cached_paths=0)
    assert table.templates == ()
    assert table.resolve("/") == UNMATCHED


@given(st.one_of(st.text(), st.binary(), st.text(alphabet="/.;%2eFitems0123456789{}")))
def test_resolve_returns_a_declared_template_or_unmatched(raw: str | bytes) -> None:
    assert SHOP.resolve(raw) in {*SHOP.templates, UNMATCHED}


# Templates built from segments, each with values that the segment must match.
WORD = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)
SAFE_TEXT = st.from_regex(
    r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]{0,8}|[a-z]{1,4}%2F[a-z]{1,4}", fullmatch=True
)
VALUES = {
    "str": SAFE_TEXT,
    "int": st.integers(0, 10**12).map(str),
    "float": st.tuples(st.integers(0, 10**6), st.integers(0, 999)).map("{0[0]}.{0[1]}".format),
    "uuid": st.uuids()
    .map(str)
    .flatmap(lambda u: st.sampled_from([u, u.upper(), u.replace("-", "")])),
    "path": st.lists(SAFE_TEXT, min_size=1, max_size=3).map("/".join),
}


@st.composite
def template_and_path(draw: st.DrawFn) -> tuple[str, str]:
    template_parts, path_parts = [], []
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["static", "str", "int", "float", "uuid", "mixed"]))
        if kind == "static":
            word = draw(WORD)
            template_parts.append(word)
            path_parts.append(word)
        elif kind == "mixed":
            template_parts.append(f"v{{p{index}:int}}.json")
            path_parts.append(f"v{draw(VALUES['int'])}.json")
        else:
            template_parts.append(f"{{p{index}:{kind}}}")
            path_parts.append(draw(VALUES[kind]))
    if draw(st.booleans()):
        template_parts.append("{rest:path}")
        path_parts.append(draw(VALUES["path"]))
    return "/" + "/".join(template_parts), "/" + "/".join(path_parts)


@given(template_and_path())
def test_a_path_built_from_a_template_resolves_back_to_it(case: tuple[str, str]) -> None:
    template, path = case
    assert RouteTable([template]).resolve(path) == template


OTHERS = ["/{a}", "/{a}/{b}", "/{a:int}/{b}", "/{rest:path}", "/x/{a:path}", "/{a}/{b:path}"]


@given(template_and_path())
def test_a_different_winner_is_at_least_as_specific(case: tuple[str, str]) -> None:
    template, path = case
    table = RouteTable([*OTHERS, template])
    winner = RouteTemplate.parse(table.resolve(path))
    assert re.fullmatch(winner.pattern, normalize_path(path))
    assert winner.is_static or winner.specificity <= RouteTemplate.parse(template).specificity


def test_a_uuid_value_from_the_uuid_module_resolves() -> None:
    table = RouteTable(["/orders/{order_id:uuid}"])
    assert table.resolve(f"/orders/{uuid.uuid4()}") == "/orders/{order_id:uuid}"
