import contextlib
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.auth._errors import PolicyError
from sloguard.auth._explain import check_policy_file
from sloguard.auth._policy import (
    MAX_POLICY_BYTES,
    compile_policy,
    load_policy,
    parse_policy,
    validate_policy,
)
from sloguard.auth._synthetic import synthetic_policy

EXAMPLE = textwrap.dedent(
    """\
    version: 1
    public:
      - {route: "/healthz"}
      - {route: "/docs/**", methods: [GET]}
    deny:
      - {route: "/internal/**"}
    roles:
      viewer:  {permissions: ["GET /products/**", "catalog:read"]}
      editor:  {inherits: [viewer], permissions: ["POST /products", "PUT /products/*"]}
      admin:   {inherits: [editor], permissions: ["* /**"]}
    bindings:
      - {tenant: acme, subjects: ["alice"], roles: [admin]}
    tenancy:
      route_param: tenant_id
      header: X-Tenant-Id
    """
)


def problems_of(text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(textwrap.dedent(text), source="p.yaml")
    return caught.value.problems


def test_the_example_policy_loads_with_inheritance_flattened() -> None:
    snapshot = load_policy(EXAMPLE, source="p.yaml")
    assert snapshot.roles["admin"].effective_roles == ("admin", "editor", "viewer")
    assert snapshot.roles["viewer"].effective_roles == ("viewer",)
    assert snapshot.tenancy.header == "x-tenant-id"
    assert snapshot.source == "p.yaml"
    assert len(snapshot.content_hash) == 64


def test_every_snapshot_gets_a_new_version() -> None:
    document = parse_policy(EXAMPLE)
    first, second = compile_policy(document), compile_policy(document)
    assert second.version > first.version
    assert second.content_hash == first.content_hash


def test_the_content_hash_ignores_comments_and_layout_but_not_content() -> None:
    reformatted = EXAMPLE.replace("version: 1", "# the policy\nversion:   1")
    assert load_policy(reformatted).content_hash == load_policy(EXAMPLE).content_hash
    changed = EXAMPLE.replace('"/healthz"', '"/livez"')
    assert load_policy(changed).content_hash != load_policy(EXAMPLE).content_hash


INVALID = [
    pytest.param(
        """\
        version: 1
        roles:
          editor: {inherits: [viewr]}
        """,
        ("p.yaml:3", "roles.editor.inherits.0", "unknown role 'viewr' (known: editor)"),
        id="unknown-inherited-role",
    ),
    pytest.param(
        """\
        version: 1
        roles:
          a: {inherits: [b]}
          b: {inherits: [c]}
          c: {inherits: [a]}
        """,
        ("p.yaml:5", "roles.c.inherits.0", "inheritance cycle: a -> b -> c -> a"),
        id="inheritance-cycle",
    ),
    pytest.param(
        "version: 1\nroles:\n  a: {inherits: [a]}\n",
        ("p.yaml:3", "roles.a.inherits.0", "inheritance cycle: a -> a"),
        id="role-inherits-itself",
    ),
    pytest.param(
        """\
        version: 1
        roles: {viewer: {}}
        bindings:
          - {tenant: acme, subjects: [alice], roles: [viewer, admin]}
        """,
        ("p.yaml:4", "bindings.0.roles.1", "unknown role 'admin' (known: viewer)"),
        id="binding-to-unknown-role",
    ),
    pytest.param(
        "version: 1\nroles:\n  viewer:\n    permissions: ['/products/**']\n",
        ("p.yaml:4", "roles.viewer.permissions", "needs a method: 'GET /products/**'"),
        id="route-permission-without-method",
    ),
    pytest.param(
        "version: 1\nroles:\n  viewer: {permissions: ['GTE /products']}\n",
        ("p.yaml:3", "roles.viewer.permissions", "unknown HTTP method 'GTE'"),
        id="misspelt-method",
    ),
    pytest.param(
        "version: 1\nroles:\n  viewer: {permissions: ['read the catalog']}\n",
        ("p.yaml:3", "roles.viewer.permissions", "neither 'METHOD /route-glob' nor a name"),
        id="permission-that-is-neither",
    ),
    pytest.param(
        "version: 1\ndeny:\n  - {route: admin/**}\n",
        ("p.yaml:3", "deny.0.route", "must start with '/'"),
        id="glob-without-leading-slash",
    ),
    pytest.param(
        "version: 1\ndeny:\n  - {route: /admin/}\n",
        ("p.yaml:3", "deny.0.route", "write '/x' or '/x/**'"),
        id="glob-with-trailing-slash",
    ),
    pytest.param(
        "version: 1\ndeny:\n  - {route: //admin}\n",
        ("p.yaml:3", "deny.0.route", "empty segment"),
        id="glob-with-double-slash",
    ),
    pytest.param(
        "version: 1\npublic:\n  - {route: /docs/../admin}\n",
        ("p.yaml:3", "public.0.route", "'.' and '..' segments are removed"),
        id="glob-with-dot-segment",
    ),
    pytest.param(
        "version: 1\npublic:\n  - {route: '/docs/%2e%2E/admin'}\n",
        ("p.yaml:3", "public.0.route", "'.' and '..' segments are removed"),
        id="glob-with-encoded-dot-segment",
    ),
    pytest.param(
        "version: 1\npublic:\n  - {route: '/docs;x'}\n",
        ("p.yaml:3", "public.0.route", "';params' never reach a normalized path"),
        id="glob-with-params",
    ),
    pytest.param(
        "version: 1\npublic:\n  - {route: '/a%zz'}\n",
        ("p.yaml:3", "public.0.route", "escape of two hex digits"),
        id="glob-with-broken-escape",
    ),
    pytest.param(
        "version: 1\npublic:\n  - {route: /docs, methods: []}\n",
        ("p.yaml:3", "public.0.methods", "an empty list matches no method"),
        id="empty-method-list",
    ),
    pytest.param(
        "version: 1\ndeny:\n  - {route: /x, case_insensitive: 'yes'}\n",
        ("p.yaml:3", "deny.0.case_insensitive", "Input should be a valid boolean"),
        id="case-insensitive-must-be-a-boolean",
    ),
    pytest.param(
        "version: 1\ndeny:\n  - {route: /x, method: [GET]}\n",
        ("p.yaml:3", "deny.0.method", "Extra inputs are not permitted"),
        id="misspelt-key",
    ),
    pytest.param(
        "version: 2\n", ("p.yaml:1", "version", "Input should be 1"), id="unknown-format-version"
    ),
    pytest.param("roles: {}\n", ("p.yaml:1", "version", "Field required"), id="version-missing"),
    pytest.param(
        "version: 1\ntenancy: {route_param: tenant-id}\n",
        ("p.yaml:2", "tenancy.route_param", "is not a route parameter name"),
        id="tenancy-route-param-not-an-identifier",
    ),
    pytest.param(
        "version: 1\nroles:\n  'my role': {}\n",
        ("p.yaml:3", "roles.my role", "role name 'my role' may hold"),
        id="role-name-with-space",
    ),
    pytest.param(
        "version: 1\ndeny:\n  - {route: /a}\ndeny:\n  - {route: /b}\n",
        ("p.yaml:4", "deny", "duplicate key"),
        id="duplicate-key-yaml-would-merge-silently",
    ),
    pytest.param(
        "version: 1\nroles:\n  a: {permissions: [\n",
        ("p.yaml:4", "-", "invalid YAML"),
        id="broken-yaml",
    ),
    pytest.param(
        "- version: 1\n", ("p.yaml:1", "-", "must be a mapping"), id="top-level-is-a-list"
    ),
    pytest.param(
        "version: 1\nwhen: 2024-13-45\n", ("p.yaml", "-", "invalid YAML value"), id="bad-timestamp"
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_an_invalid_policy_names_file_line_field_and_reason(
    text: str, expected: tuple[str, str, str]
) -> None:
    problems = problems_of(text)
    where, field, message = expected
    assert any(p[0] == where and p[1] == field and message in p[2] for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        """\
        version: 1
        deny:
          - {route: admin}
        roles:
          a: {inherits: [nobody], permissions: ['/x']}
        """
    )
    assert [p[1] for p in problems] == ["deny.0.route", "roles.a.permissions"]
    # semantic checks run once the shape is valid
    assert [p[1] for p in problems_of("version: 1\nroles:\n  a: {inherits: [x, y]}\n")] == [
        "roles.a.inherits.0",
        "roles.a.inherits.1",
    ]


def test_a_cycle_is_reported_once_however_many_roles_are_on_it() -> None:
    problems = problems_of(
        "version: 1\nroles:\n  a: {inherits: [b]}\n  b: {inherits: [a]}\n  c: {inherits: [a]}\n"
    )
    assert [(p[1], p[2]) for p in problems] == [
        ("roles.b.inherits.0", "inheritance cycle: a -> b -> a")
    ]


def test_alias_expansion_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    problems = problems_of("\n".join(["version: 1", *lines, "roles: {}"]) + "\n")
    assert problems == [("p.yaml", "-", "more than 500000 YAML nodes (aliases expanded)")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[" * 5000, "invalid YAML", id="deep-nesting"),
        pytest.param(b"version: 1\n\xff\n", "not UTF-8", id="not-utf-8"),
        pytest.param(b"#" * (MAX_POLICY_BYTES + 1), "larger than", id="too-large"),
    ],
)
def test_hostile_documents_are_policy_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.yaml")
    assert message in caught.value.problems[0][2]


def test_glob_escapes_are_stored_in_the_spelling_normalized_paths_use() -> None:
    document = parse_policy("version: 1\ndeny:\n  - {route: '/caf%c3%a9/%61dmin/**'}\n")
    assert document.deny[0].route == "/caf%C3%A9/admin/**"


def test_methods_are_uppercased_and_a_json_document_is_accepted() -> None:
    document = parse_policy('{"version": 1, "public": [{"route": "/x", "methods": ["get"]}]}')
    assert document.public[0].methods == ("GET",)


def test_validate_policy_takes_parsed_data_such_as_the_synthetic_policy() -> None:
    data = synthetic_policy(tenants=5, roles=30, rules=100)
    snapshot = compile_policy(validate_policy(data))
    assert len(snapshot.roles) == 30
    assert len(snapshot.grants.grants) == 100
    assert snapshot.roles["role9"].effective_roles[-1] == "role0"
    assert set(snapshot.bindings) == {f"tenant{t}" for t in range(5)}


def test_validate_policy_problems_carry_the_source_but_no_line() -> None:
    with pytest.raises(PolicyError) as caught:
        validate_policy({"version": 1, "roles": {"a": {"inherits": ["b"]}}}, source="redis")
    assert caught.value.problems == [("redis", "roles.a.inherits.0", "unknown role 'b' (known: a)")]


def test_check_policy_file_returns_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE)
    assert check_policy_file(path).source == str(path)


def test_check_policy_file_reports_a_missing_file_as_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        check_policy_file(tmp_path / "absent.yaml")
    assert caught.value.problems == [
        (str(tmp_path / "absent.yaml"), "-", "cannot read: No such file or directory")
    ]


def test_the_synthetic_policy_dumped_as_yaml_loads() -> None:
    text = yaml.safe_dump(synthetic_policy(tenants=3, roles=12, rules=40))
    assert len(load_policy(text).grants.grants) == 40


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parsing_any_text_raises_nothing_but_policy_error(text: str) -> None:
    with contextlib.suppress(PolicyError):
        parse_policy(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["/", "a", "*", "**", "?", "%2F", "..", ";", "{id}", "B"]), max_size=6
    ).map("".join)
)
def test_an_accepted_glob_has_no_segment_a_normalized_path_cannot_have(glob: str) -> None:
    text = f"version: 1\ndeny:\n  - {{route: {glob!r}}}\n"
    problems: list[tuple[str, str, str]] = []
    try:
        route = load_policy(text).deny.rules[0].route
    except PolicyError as error:
        problems, route = error.problems, ""
    if problems:
        assert {field for _, field, _ in problems} == {"deny.0.route"}
    elif route not in {"*", "**", "/**", "/"}:
        segments = route.split("/")
        assert segments[0] == ""
        assert not {"", ".", ".."} & set(segments[1:])
        assert ";" not in route
