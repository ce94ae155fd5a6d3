"""Atheris target: the policy loader and the route-rule checks on hostile input.

Three shapes of input, chosen by the first byte:

0. raw bytes as a policy document: :func:`parse_policy` raises nothing but
   :class:`PolicyError` (YAML errors, recursion, alias bombs, bad values), and
   a document that loads also compiles;
1. a document assembled from fuzzed choices (globs with ``*``/``**``/escapes,
   methods, named and route permissions, inherits, bindings), so validation,
   cycle detection and compilation see well-formed YAML; when it loads, a
   fuzzed request is decided without an exception;
2. raw bytes as a request path, routed through a :class:`RouteTable`: the
   path's spellings all start with ``/`` and are normalized already, and the
   deny rule on ``/admin/**`` holds for every path whose normalized form is
   under ``/admin`` in any case -- with the route resolved or unmatched,
   cached or not.

Run: ``python fuzz/fuzz_policy.py [corpus_dir] -max_total_time=60``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["sloguard.auth", "sloguard.routing"]):
    from sloguard.auth._decision import DecisionCache
    from sloguard.auth._errors import PolicyError
    from sloguard.auth._matchers import path_views
    from sloguard.auth._policy import compile_policy, load_policy, parse_policy
    from sloguard.auth._principal import Principal
    from sloguard.routing import RouteTable, normalize_path

GUARD = load_policy(
    """
version: 1
public: [{route: "/docs/**", methods: [GET]}, {route: "/healthz"}]
deny: [{route: "/admin/**"}]
roles:
  viewer: {permissions: ["GET /products/**", "GET /{page}"]}
  admin: {inherits: [viewer], permissions: ["* /**"]}
tenancy: {route_param: tenant_id}
"""
)
TABLE = RouteTable(
    ["/products/{id}", "/{page}", "/docs/{p:path}", "/tenants/{tenant_id}/x", "/admin/{x}"],
    max_cached_paths=0,
)
CACHE = DecisionCache(maxsize=256)
ADMIN = Principal("a", frozenset({"admin"}))
SEGMENTS = ["a", "admin", "*", "**", "x*", "?", "{id}", "%2F", "%2e", "..", ".", "", ";p", "A"]
METHODS = ["GET", "get", "HEAD", "POST", "*", "BREW", ""]
ROLES = ["r0", "r1", "r2", "r3"]


def fuzz_document(data: bytes) -> None:
    try:
        document = parse_policy(data, source="fuzz")
    except PolicyError:
        return
    compile_policy(document)


def glob(fdp: atheris.FuzzedDataProvider) -> str:
    count = fdp.ConsumeIntInRange(0, 4)
    return "/" + "/".join(fdp.PickValueInList(SEGMENTS) for _ in range(count))


def fuzz_assembled(fdp: atheris.FuzzedDataProvider) -> None:
    lines = [f"version: {fdp.ConsumeIntInRange(0, 2)}", "roles:"]
    for role in ROLES[: fdp.ConsumeIntInRange(0, len(ROLES))]:
        inherits = [fdp.PickValueInList(ROLES) for _ in range(fdp.ConsumeIntInRange(0, 2))]
        permissions = []
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            if fdp.ConsumeBool():
                permissions.append(f"{fdp.PickValueInList(METHODS)} {glob(fdp)}".strip())
            else:
                permissions.append(fdp.ConsumeUnicodeNoSurrogates(12) or "x:y")
        lines.append(f"  {role}: {{inherits: {inherits!r}, permissions: {permissions!r}}}")
    for section in ("deny", "public"):
        rules = [
            f"{{route: {glob(fdp)!r}, methods: [{fdp.PickValueInList(METHODS)!r}]}}"
            for _ in range(fdp.ConsumeIntInRange(0, 3))
        ]
        lines.append(f"{section}: [{', '.join(rules)}]")
    if fdp.ConsumeBool():
        lines.append(f"bindings: [{{tenant: t, subjects: ['*'], roles: [{ROLES[0]!r}]}}]")
    try:
        snapshot = load_policy("\n".join(lines) + "\n", source="fuzz")
    except PolicyError:
        return
    principal = Principal("s", frozenset(ROLES[: fdp.ConsumeIntInRange(0, 4)]), tenant="t")
    path = fdp.ConsumeUnicodeNoSurrogates(40)
    route = TABLE.resolve(path)
    snapshot.decide(principal, fdp.PickValueInList(METHODS) or "GET", route, path, tenant="t")


def fuzz_path(data: bytes) -> None:
    views = path_views(data)
    for view in views:
        assert view.startswith("/"), (data, view)
        dotted = {".", ".."} & set(view.split("/"))
        assert dotted or normalize_path(view, strip_params=False) == view, (data, view)
    normalized = normalize_path(data, lowercase=True)
    under_admin = normalized == "/admin" or normalized.startswith("/admin/")
    for route in (TABLE.resolve(data), "<unmatched>"):
        for decision in (
            GUARD.decide(ADMIN, "GET", route, data, tenant=None),
            CACHE.decide(GUARD, ADMIN, "GET", route, data, tenant=None),
        ):
            if under_admin:
                assert decision.code == "AUTH_202", (data, route, decision)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    shape, rest = data[0] % 3, data[1:]
    if shape == 0:
        fuzz_document(rest)
    elif shape == 1:
        fuzz_assembled(atheris.FuzzedDataProvider(rest))
    else:
        fuzz_path(rest)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
