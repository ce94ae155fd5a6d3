"""What authentication and authorization cost: RBAC decisions, token checks, the middleware.

Three measurements, each engine in its own fresh interpreter
(``python -m benchmarks.auth serve``), rounds interleaved across the
interpreters of a group (as in :mod:`benchmarks.observe`), the median reported:

* **RBAC decisions** over the synthetic policy (50 tenants x 200 roles x 1,000
  rules, :func:`sloguard.auth._synthetic.synthetic_policy`): sloguard's
  ``PolicySnapshot.decide`` (uncached), ``DecisionCache.decide`` (warmed), and
  pycasbin enforcing the same policy as an RBAC-with-domains model (grants as
  ``p`` lines, role inheritance and tenant bindings as ``g`` lines, route globs
  in ``keyMatch2`` syntax). Every engine also returns its allow/deny answer for
  a sample of the requests plus one "deep binding" probe per tenant, and the
  parent checks they agree.
* **Token verification**, RS256 with a 2048-bit key: ``TokenVerifier.verify_sync``
  with its verified-token cache (one hot token; 1,000 users' tokens cycling; the
  same with one never-seen token every 100 requests; the cache switched off)
  against PyJWT's ``jwt.decode`` on every request.
* **The auth middleware** in the in-process ASGI harness of
  :mod:`benchmarks.observe`: the guard with auth enabled (RS256 static key, a
  small policy, a valid bearer token on every request) against the same guard
  with auth disabled, and the bare app; a counting ``send`` checks every
  request was answered 200.

pycasbin has no decision cache of its own, so both sloguard rows are set
against its one way of deciding. A cProfile of the guarded variant with auth
and of the uncached decision shows where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import io
import itertools
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from rich.table import Table

from benchmarks._child import BenchChild

__all__ = [
    "CASBIN_MATCHER",
    "CASBIN_MODEL",
    "NAME",
    "VARIANTS",
    "Bench",
    "Sizes",
    "Variant",
    "binding_probes",
    "build_bench",
    "casbin_enforcer",
    "casbin_object",
    "measure_interleaved",
    "profile_variant",
    "run",
    "tables",
]

NAME = "auth"
ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 5
QUICK_ROUNDS = 2
SPEEDUP_GOAL = 10.0
SEEDS_TPS = 2_000
PROFILE_TOP = 15
CHILD_TIMEOUT_S = 120.0
SEED = 20240601
ISSUER = "https://issuer.bench"
AUDIENCE = "bench"
KID = "bench-rs256"

#: The fastest of the matchers tried on this policy (100 decisions each): the method
#: test, then the role link, then the regex. The role link first was 1.3x slower,
#: keyMatch2 before the role link 4.5-5.4x, globMatch instead of keyMatch2 1.8x.
#: ``p.dom`` is "*" on every grant (grants hold in every tenant), so its test goes last.
CASBIN_MATCHER = (
    '(p.act == "*" || r.act == p.act) && g(r.sub, p.sub, r.dom) '
    '&& keyMatch2(r.obj, p.obj) && (p.dom == "*" || r.dom == p.dom)'
)
CASBIN_MODEL = f"""\
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = {CASBIN_MATCHER}
"""
#: casbin's role manager stops after 10 links by default; the synthetic policy's
#: inheritance chains are 10 roles deep plus the tenant binding (11 links).
CASBIN_MAX_HIERARCHY = 16

MIDDLEWARE_POLICY = """\
version: 1
public:
  - {route: "/healthz"}
deny:
  - {route: "/internal/**"}
  - {route: "/admin/**"}
roles:
  viewer: {permissions: ["GET /items/*"]}
  editor: {inherits: [viewer], permissions: ["POST /items", "PUT /items/*"]}
"""

FAIRNESS = [
    "RBAC: both engines get the same policy (built from one synthetic_policy dict) and the "
    "same requests. sloguard decides on the route template and the raw path and also runs "
    "its deny and public rules on every call (cached or not); pycasbin is given the grants "
    "only (no deny rules, so some(where allow) can stop at the first allowing line) and the "
    "concrete path.",
    "RBAC: a principal's token roles have no place in a casbin request, so a casbin "
    "decision is enforce() with each token role as the subject, then the subject itself "
    "(whose tenant bindings are g lines), stopping at the first allow -- how casbin is "
    "used with JWT roles. Its per-enforce cost is reported too.",
    "RBAC: pycasbin's matcher puts the cheapest, most selective tests first (the fastest "
    "order of those tried); FastEnforcer's policy filter cannot help because every grant "
    "has domain '*' and subjects are matched through role links. Role inheritance is "
    "replicated into every tenant's domain (casbin's fastest way to inherit in all "
    "domains), and its maximum hierarchy depth is raised from 10 to 16 (see "
    "'agreement'). pycasbin has no decision cache.",
    "Tokens: the same RS256 2048-bit tokens (sub, iss, aud, iat, exp, roles, tenant) for "
    "both; PyJWT gets the loaded public key object (no PEM parsing per call), algorithms="
    "['RS256'], the audience, the issuer and require=['exp'], as sloguard checks.",
    "Middleware: every variant gets the same scopes, including the bearer token, and the "
    "same counting send; the guard with and without auth have identical observe settings "
    "(100% sampling, 2 SLOs, JSON access log).",
]


class Bench(Protocol):
    """One variant built in a process: ``run(count)`` times ``count`` operations."""

    def run(self, count: int) -> int: ...

    def finish(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Sizes:
    """Everything that scales; the smoke test shrinks it."""

    tenants: int = 50
    roles: int = 200
    rules: int = 1_000
    requests: int = 2_000  # distinct synthetic requests, cycled
    agree_sample: int = 200  # requests whose answers the engines compare
    users: int = 1_000  # distinct tokens, cycled
    churn_every: int = 100  # one never-seen token per this many requests
    middleware_ids: int = 1_000
    rounds: int = ROUNDS  # sizes the churn variant's pool of fresh tokens


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    group: str  # "rbac", "token" or "middleware"
    unit: str
    ops: int  # operations per timed round
    quick_ops: int
    build: Callable[[Sizes, int], Bench]


# --- RBAC ---------------------------------------------------------------------------------


def _synthetic(sizes: Sizes) -> tuple[dict[str, Any], list[Any]]:
    from sloguard.auth._synthetic import synthetic_policy, synthetic_requests

    policy = synthetic_policy(sizes.tenants, sizes.roles, sizes.rules)
    requests = synthetic_requests(
        sizes.tenants, sizes.roles, sizes.rules, count=sizes.requests, seed=SEED
    )
    return policy, requests


def binding_probes(policy: dict[str, Any]) -> list[Any]:
    """Per binding, the first grant of the bound role's deepest ancestor, asked by the
    bound subject with no token roles: the longest role chains casbin must follow."""
    from sloguard.auth._synthetic import SyntheticRequest

    roles = policy["roles"]
    probes = []
    for binding in policy["bindings"]:
        root = binding["roles"][0]
        while roles[root].get("inherits"):
            root = roles[root]["inherits"][0]
        if not roles[root]["permissions"]:
            continue
        method, glob = roles[root]["permissions"][0].split()
        segments = glob.split("/")
        route = "/".join(
            "{tenant_id}" if i == 2 else "{item_id}" if s == "**" else s
            for i, s in enumerate(segments)
        )
        tenant = binding["tenant"]
        path = route.replace("{tenant_id}", tenant).replace("{item_id}", "7")
        for subject in binding["subjects"]:
            method = "GET" if method == "*" else method
            probes.append(SyntheticRequest(subject, frozenset(), tenant, method, route, path))
    return probes


def _agreement_requests(sizes: Sizes, policy: dict[str, Any], requests: list[Any]) -> list[Any]:
    return requests[: sizes.agree_sample] + binding_probes(policy)


class _SloguardRBAC:
    def __init__(self, sizes: Sizes, *, cached: bool) -> None:
        from sloguard.auth import DecisionCache, Principal
        from sloguard.auth._policy import compile_policy, validate_policy

        policy, requests = _synthetic(sizes)
        snapshot = compile_policy(validate_policy(policy))
        self.cache = DecisionCache() if cached else None
        decide = snapshot.decide if self.cache is None else partial(self.cache.decide, snapshot)
        self._decide = decide

        def call(r: Any) -> tuple[Any, ...]:
            return (Principal(r.subject, r.roles, r.tenant), r.method, r.route, r.path, r.tenant)

        self._calls = [call(r) for r in requests]
        self._agree = [call(r) for r in _agreement_requests(sizes, policy, requests)]
        self._stream = itertools.cycle(self._calls)
        self.decisions = 0
        self.allowed = 0
        if self.cache is not None:
            for principal, method, route, path, tenant in self._calls:
                decide(principal, method, route, path, tenant=tenant)

    def run(self, count: int) -> int:
        decide, allowed = self._decide, 0
        calls = itertools.islice(self._stream, count)
        start = time.perf_counter_ns()
        for principal, method, route, path, tenant in calls:
            allowed += decide(principal, method, route, path, tenant=tenant).allowed
        elapsed = time.perf_counter_ns() - start
        self.decisions += count
        self.allowed += allowed
        return elapsed

    def finish(self) -> dict[str, Any]:
        answers = [
            self._decide(p, method, route, path, tenant=tenant).allowed
            for p, method, route, path, tenant in self._agree
        ]
        return {
            "decisions": self.decisions,
            "allowed_share": self.allowed / self.decisions if self.decisions else None,
            "answers": answers,
            "cache_entries": None if self.cache is None else len(self.cache),
        }


def casbin_object(glob: str) -> str:
    """A sloguard route glob in keyMatch2 syntax.

    ``*`` (one segment) and ``{name}`` become ``:name`` parameters, a trailing
    ``**`` becomes ``*``. One difference remains: sloguard's ``/x/**`` also matches
    ``/x``, keyMatch2's ``/x/*`` does not (the synthetic requests always carry an
    item segment, so it never shows).
    """
    if glob in {"*", "**", "/**"}:
        return "*"
    segments = glob.split("/")[1:]
    parts = []
    for index, segment in enumerate(segments):
        if segment == "**" and index == len(segments) - 1:
            parts.append("*")
        elif segment == "*":
            parts.append(f":p{index}")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(":" + segment[1:-1].partition(":")[0])
        elif any(c in segment for c in "*?:{}"):
            raise ValueError(f"no keyMatch2 spelling for segment {segment!r} of {glob!r}")
        else:
            parts.append(segment)
    return "/" + "/".join(parts)


def casbin_enforcer(policy: dict[str, Any]) -> Any:
    """pycasbin's in-memory Enforcer holding ``policy`` (a synthetic_policy dict)."""
    import casbin  # type: ignore[import-untyped]

    model = casbin.Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model, None)
    enforcer.get_role_manager().max_hierarchy_level = CASBIN_MAX_HIERARCHY
    grants = []
    for role, spec in policy["roles"].items():
        for permission in spec["permissions"]:
            method, glob = permission.split()
            grants.append([role, "*", casbin_object(glob), method])
    tenants = sorted({b["tenant"] for b in policy["bindings"]})
    links = [
        [role, parent, tenant]
        for role, spec in policy["roles"].items()
        for parent in spec.get("inherits", ())
        for tenant in tenants
    ]
    links += [
        [subject, role, b["tenant"]]
        for b in policy["bindings"]
        for subject in b["subjects"]
        for role in b["roles"]
    ]
    enforcer.add_policies(grants)
    enforcer.add_grouping_policies(links)
    return enforcer


class _CasbinRBAC:
    def __init__(self, sizes: Sizes) -> None:
        policy, requests = _synthetic(sizes)
        self.enforcer = casbin_enforcer(policy)

        def call(r: Any) -> tuple[Any, ...]:
            return ((*sorted(r.roles), r.subject), r.tenant, r.path, r.method)

        self._calls = [call(r) for r in requests]
        self._agree = [call(r) for r in _agreement_requests(sizes, policy, requests)]
        self._stream = itertools.cycle(self._calls)
        self.decisions = 0
        self.allowed = 0
        self.enforce_calls = 0

    def _decide(self, subjects: tuple[str, ...], tenant: str, path: str, method: str) -> bool:
        enforce = self.enforcer.enforce
        for subject in subjects:
            self.enforce_calls += 1
            if enforce(subject, tenant, path, method):
                return True
        return False

    def run(self, count: int) -> int:
        decide, allowed = self._decide, 0
        calls = itertools.islice(self._stream, count)
        start = time.perf_counter_ns()
        for subjects, tenant, path, method in calls:
            allowed += decide(subjects, tenant, path, method)
        elapsed = time.perf_counter_ns() - start
        self.decisions += count
        self.allowed += allowed
        return elapsed

    def finish(self) -> dict[str, Any]:
        timed_calls = self.enforce_calls
        answers = [self._decide(*call) for call in self._agree]
        return {
            "decisions": self.decisions,
            "allowed_share": self.allowed / self.decisions if self.decisions else None,
            "answers": answers,
            "enforce_calls_per_decision": timed_calls / self.decisions if self.decisions else None,
            "policy_lines": len(self.enforcer.get_policy()),
            "grouping_lines": len(self.enforcer.get_grouping_policy()),
        }


# --- tokens -------------------------------------------------------------------------------


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(private_key: Any, subjects: Sequence[str], now: int) -> list[str]:
    import jwt

    return [
        jwt.encode(
            {
                "sub": subject,
                "iss": ISSUER,
                "aud": AUDIENCE,
                "iat": now,
                "exp": now + 3600,
                "roles": ["viewer"],
                "tenant": f"tenant{index % 50}",
            },
            private_key,
            algorithm="RS256",
            headers={"kid": KID},
        )
        for index, subject in enumerate(subjects)
    ]


class _TokenBench:
    """``mode``: hot (one token), mix (all users cycling), churn (mix plus a never-seen
    token every ``churn_every`` requests), nocache (sloguard, cache off), pyjwt."""

    def __init__(self, sizes: Sizes, ops: int, mode: str) -> None:
        import jwt

        from sloguard.auth import KeySet, StaticKey, TokenVerifier

        key = _rsa_key()
        self.public_key = key.public_key()
        now = int(time.time())
        users = [f"user-{i}" for i in range(sizes.users)]
        self.tokens = _sign(key, users, now)
        self.mode = mode
        self.churn_every = sizes.churn_every
        fresh = (sizes.rounds + 1) * -(-ops // sizes.churn_every) if mode == "churn" else 0
        self._fresh = iter(_sign(key, [f"new-{i}" for i in range(fresh)], now))
        self.fresh_used = 0
        self.verifier = TokenVerifier(
            KeySet([StaticKey(self.public_key, kid=KID, algorithms=["RS256"])]),
            issuers=[ISSUER],
            audiences=[AUDIENCE],
            cache_size=0 if mode == "nocache" else 10_000,
        )
        self._decode = jwt.decode
        self._stream = itertools.cycle(self.tokens[:1] if mode == "hot" else self.tokens)
        self.verified = 0
        if mode in {"hot", "mix", "churn"}:
            for token in self.tokens:
                self.verifier.verify_sync(token)
        self.warm_misses = self.verifier.cache.misses

    def _pyjwt(self, token: str) -> dict[str, Any]:
        claims: dict[str, Any] = self._decode(
            token,
            self.public_key,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp"]},
            leeway=30,
        )
        return claims

    def _tokens(self, count: int) -> list[str]:
        tokens = list(itertools.islice(self._stream, count))
        if self.mode == "churn":
            for index in range(self.churn_every - 1, count, self.churn_every):
                tokens[index] = next(self._fresh)
                self.fresh_used += 1
        return tokens

    def run(self, count: int) -> int:
        tokens = self._tokens(count)
        verify = self._pyjwt if self.mode == "pyjwt" else self.verifier.verify_sync
        start = time.perf_counter_ns()
        for token in tokens:
            verify(token)
        elapsed = time.perf_counter_ns() - start
        self.verified += count
        return elapsed

    def finish(self) -> dict[str, Any]:
        cache = self.verifier.cache
        hits, misses = cache.hits, cache.misses - self.warm_misses
        verify = self._pyjwt if self.mode == "pyjwt" else self.verifier.verify_sync
        sample = self.tokens[:50]
        subjects_ok = [verify(t)["sub"] for t in sample] == [
            f"user-{i}" for i in range(len(sample))
        ]
        timed = self.mode != "pyjwt"
        return {
            "verified": self.verified,
            "subjects_ok": subjects_ok,
            "fresh_tokens": self.fresh_used,
            "cache_hits": hits if timed else None,
            "cache_misses": misses if timed else None,
        }


# --- middleware ---------------------------------------------------------------------------


class _MiddlewareBench:
    def __init__(self, sizes: Sizes, *, kind: str) -> None:
        import jwt
        from cryptography.hazmat.primitives import serialization

        from benchmarks.apps import build_bare, build_sloguard
        from benchmarks.observe import request_scopes

        self._tmp = tempfile.TemporaryDirectory(prefix="sloguard-bench-auth-")
        workdir = Path(self._tmp.name)
        self._sink = io.StringIO()
        key = _rsa_key()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (workdir / "jwt.pem").write_bytes(public_pem)
        (workdir / "policy.yaml").write_text(MIDDLEWARE_POLICY)
        now = int(time.time())
        claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600}
        token = jwt.encode(
            {**claims, "roles": ["viewer"]}, key, algorithm="RS256", headers={"kid": KID}
        )
        self._scopes = request_scopes(traceparent=False, distinct=sizes.middleware_ids)
        for scope in self._scopes:
            scope["headers"].append((b"authorization", f"Bearer {token}".encode()))
        self.kind = kind
        if kind == "bare":
            self.built = build_bare()
        else:
            auth = {
                "enabled": True,
                "static_keys": [
                    {"file": str(workdir / "jwt.pem"), "kid": KID, "algorithms": ["RS256"]}
                ],
                "issuers": [ISSUER],
                "audiences": [AUDIENCE],
                "policy": {"file": str(workdir / "policy.yaml"), "poll_interval_s": 60},
            }
            overrides = {"auth": auth} if kind == "auth" else None
            self.built = build_sloguard(workdir, self._sink, name=kind, overrides=overrides)
        self._runner = asyncio.Runner()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.requests = 0

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses[message["status"]] += 1

    def run(self, count: int) -> int:
        from benchmarks.observe import drive

        self._sink.seek(0)
        self._sink.truncate()
        self.requests += count
        elapsed: int = self._runner.run(drive(self.built.app, self._scopes, count, self._send))
        return elapsed

    def finish(self) -> dict[str, Any]:
        from benchmarks.observe import drive

        result: dict[str, Any] = {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }
        guard = self.built.extra.get("guard")
        auth = guard.auth if guard is not None else None
        if auth is not None:
            cache = auth.gate.verifier.cache
            result["token_cache"] = {"hits": cache.hits, "misses": cache.misses}
            result["decision_cache_entries"] = len(auth.gate.cache)
            anonymous = self._scopes[0].copy()
            anonymous["headers"] = [h for h in anonymous["headers"] if h[0] != b"authorization"]
            self.statuses.clear()
            self._runner.run(drive(self.built.app, [anonymous], 1, self._send))
            result["status_without_token"] = next(iter(self.statuses))
        try:
            self.built.close()
            self._runner.close()
        finally:
            self._tmp.cleanup()
        return result


# --- the variants -------------------------------------------------------------------------

_GROUPS = {
    "rbac": ("rbac", "decision"),
    "token": ("token", "token"),
    "mw": ("middleware", "request"),
}


def _variant(name: str, label: str, ops: int, build: Callable[[Sizes, int], Bench]) -> Variant:
    """``ops`` per timed round (a tenth of it with --quick); group and unit from the name."""
    group, unit = _GROUPS[name.partition("-")[0]]
    return Variant(name, label, group, unit, ops, ops // 10, build)


def _tokens(mode: str) -> Callable[[Sizes, int], Bench]:
    return lambda sizes, ops: _TokenBench(sizes, ops, mode)


def _middleware(kind: str) -> Callable[[Sizes, int], Bench]:
    return lambda sizes, ops: _MiddlewareBench(sizes, kind=kind)


VARIANTS: tuple[Variant, ...] = (
    _variant(
        "rbac-sloguard",
        "sloguard PolicySnapshot.decide (uncached)",
        50_000,
        lambda sizes, ops: _SloguardRBAC(sizes, cached=False),
    ),
    _variant(
        "rbac-sloguard-cached",
        "sloguard DecisionCache.decide (warm)",
        200_000,
        lambda sizes, ops: _SloguardRBAC(sizes, cached=True),
    ),
    _variant(
        "rbac-casbin",
        "pycasbin Enforcer (RBAC with domains)",
        100,
        lambda sizes, ops: _CasbinRBAC(sizes),
    ),
    _variant("token-sloguard-hot", "sloguard verify_sync, one hot token", 200_000, _tokens("hot")),
    _variant(
        "token-sloguard-mix",
        "sloguard verify_sync, 1,000 users' tokens cycling",
        200_000,
        _tokens("mix"),
    ),
    _variant(
        "token-sloguard-churn",
        "sloguard verify_sync, 1,000 users + 1% never-seen tokens",
        50_000,
        _tokens("churn"),
    ),
    _variant(
        "token-sloguard-nocache", "sloguard verify_sync, cache off", 5_000, _tokens("nocache")
    ),
    _variant("token-pyjwt", "PyJWT jwt.decode every request", 5_000, _tokens("pyjwt")),
    _variant("mw-bare", "bare Starlette", 10_000, _middleware("bare")),
    _variant("mw-guard", "guard, auth disabled", 10_000, _middleware("guard")),
    _variant(
        "mw-guard-auth",
        "guard, auth enabled (RS256, cached token + decision)",
        10_000,
        _middleware("auth"),
    ),
)
_BY_NAME = {v.name: v for v in VARIANTS}


def build_bench(name: str, sizes: Sizes, ops: int) -> Bench:
    return _BY_NAME[name].build(sizes, ops)


# --- running: children, interleaved rounds ------------------------------------------------


def _Child(name: str, sizes: Sizes, ops: int) -> BenchChild:  # noqa: N802 - reads as the class it builds
    """A variant served by ``python -m benchmarks.auth serve``."""
    args = ["serve", name, f"--ops={ops}", f"--sizes={json.dumps(asdict(sizes))}"]
    return BenchChild(name, "benchmarks.auth", args)


def _serve(name: str, sizes: Sizes, ops: int) -> None:
    """The child side of :class:`_Child`: build, then answer 'round' and 'finish'."""
    protocol, sys.stdout = sys.stdout, sys.stderr
    bench = build_bench(name, sizes, ops)

    def answer(value: dict[str, Any]) -> None:
        protocol.write(json.dumps(value) + "\n")
        protocol.flush()

    answer({"ready": name})
    for line in sys.stdin:
        command = line.strip()
        if command == "round":
            gc.collect()
            answer({"ns": bench.run(ops)})
        elif command == "finish":
            answer(bench.finish())
            return


def measure_interleaved(
    names: Sequence[str],
    sizes: Sizes,
    *,
    quick: bool = False,
    rounds: int = ROUNDS,
    progress: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Each variant in its own interpreter; round 0 (warm-up) unreported, then ``rounds``
    rounds, each running every variant once from a rotating start."""
    ops = {n: _BY_NAME[n].quick_ops if quick else _BY_NAME[n].ops for n in names}
    sizes = replace(sizes, rounds=rounds)
    children = [_Child(name, sizes, ops[name]) for name in names]
    try:
        for child in children:
            child.ask("")
        timed: dict[str, list[float]] = {name: [] for name in names}
        for index in range(rounds + 1):
            warm = " (warm-up)" if index == 0 else ""
            progress(f"auth: {_BY_NAME[names[0]].group} round {index}/{rounds}{warm}")
            offset = index % len(children)
            for child in children[offset:] + children[:offset]:
                answer = child.ask("round")
                if index:
                    timed[child.name].append(answer["ns"] / ops[child.name] / 1000)
        results = {}
        for child in children:
            counters = child.ask("finish")
            variant = _BY_NAME[child.name]
            rounds_us = timed[child.name]
            median = statistics.median(rounds_us)
            results[child.name] = {
                "variant": child.name,
                "label": variant.label,
                "group": variant.group,
                "unit": variant.unit,
                "ops_per_round": ops[child.name],
                "rounds": len(rounds_us),
                "rounds_us": rounds_us,
                "median_us": median,
                "min_us": min(rounds_us),
                "max_us": max(rounds_us),
                "per_second": 1e6 / median,
                **counters,
            }
        return results
    finally:
        for child in children:
            child.close()


def profile_variant(name: str, sizes: Sizes, ops: int, top: int = PROFILE_TOP) -> dict[str, Any]:
    """cProfile of ``ops`` operations after a warm-up of as many; ``auth`` rows are the
    functions of ``sloguard.auth`` and its middleware, by cumulative time."""
    bench = build_bench(name, sizes, ops)
    bench.run(ops)  # warm-up: every request of the cycle once (route plans, caches)
    profiler = cProfile.Profile()
    profiler.enable()
    bench.run(ops)
    profiler.disable()
    bench.finish()
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [
        {
            "function": _where(key),
            "ncalls": calls,
            "tottime_us_per_op": own / ops * 1e6,
            "cumtime_us_per_op": cumulative / ops * 1e6,
        }
        for key, (_, calls, own, cumulative, _) in entries.items()
    ]
    by_cumulative = sorted(rows, key=lambda r: r["cumtime_us_per_op"], reverse=True)
    return {
        "variant": name,
        "ops": ops,
        "unit": _BY_NAME[name].unit,
        "cumulative": by_cumulative[:top],
        "auth": [r for r in by_cumulative if r["function"].startswith(_AUTH_CODE)][:top],
        "tottime": sorted(rows, key=lambda r: r["tottime_us_per_op"], reverse=True)[:top],
    }


_AUTH_CODE = ("sloguard/auth/", "sloguard/asgi/auth.py")


def _where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({function})" if line else function


def _profile_in_subprocess(name: str, sizes: Sizes, ops: int) -> dict[str, Any]:
    from benchmarks.apps import bench_environment

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "benchmarks.auth", "profile", name, f"--ops={ops}"]
        command += [f"--sizes={json.dumps(asdict(sizes))}", f"--out={out.name}"]
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=bench_environment(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
    return result


# --- the whole benchmark ------------------------------------------------------------------


def _goal(label: str, theirs: float, ours: float) -> dict[str, Any]:
    ratio = theirs / ours
    return {
        "goal": label,
        "theirs_us": theirs,
        "ours_us": ours,
        "speedup": ratio,
        "limit": SPEEDUP_GOAL,
        "met": ratio >= SPEEDUP_GOAL,
    }


def _agreement(results: dict[str, dict[str, Any]], sizes: Sizes) -> dict[str, Any]:
    casbin = results["rbac-casbin"]["answers"]
    agreement: dict[str, Any] = {
        "random_requests": min(sizes.agree_sample, sizes.requests),
        "binding_probes": len(casbin) - min(sizes.agree_sample, sizes.requests),
        "casbin_max_hierarchy_level": CASBIN_MAX_HIERARCHY,
    }
    for name in ("rbac-sloguard", "rbac-sloguard-cached"):
        ours = results[name]["answers"]
        agree = sum(a == b for a, b in zip(ours, casbin, strict=True))
        agreement[name] = {
            "compared": len(ours),
            "agree": agree,
            "rate": agree / len(ours),
            "allowed": sum(ours),
            "disagreeing_indices": [i for i, (a, b) in enumerate(zip(ours, casbin)) if a != b],
        }
    return agreement


def run(
    *,
    quick: bool = False,
    progress: Callable[[str], None] = print,
    sizes: Sizes | None = None,
    profile: bool = True,
) -> dict[str, Any]:
    """All three measurements, the agreement check, the goals and two profiles."""
    sizes = sizes or (Sizes(agree_sample=20) if quick else Sizes())
    rounds = QUICK_ROUNDS if quick else ROUNDS
    variants: dict[str, dict[str, Any]] = {}
    for group in ("rbac", "token", "middleware"):
        names = [v.name for v in VARIANTS if v.group == group]
        progress(f"auth: {group}: {len(names)} variants, {rounds} rounds + 1 warm-up")
        variants.update(
            measure_interleaved(names, sizes, quick=quick, rounds=rounds, progress=progress)
        )
    us = {name: v["median_us"] for name, v in variants.items()}
    for name, v in variants.items():
        peer = {"rbac": "rbac-casbin", "token": "token-pyjwt"}.get(v["group"])
        v["peer_speedup"] = us[peer] / v["median_us"] if peer else None
    casbin = variants["rbac-casbin"]
    casbin["us_per_enforce"] = us["rbac-casbin"] / casbin["enforce_calls_per_decision"]
    added = us["mw-guard-auth"] - us["mw-guard"]
    goals = [
        _goal("RBAC uncached: pycasbin / sloguard >= 10", us["rbac-casbin"], us["rbac-sloguard"]),
        _goal(
            "RBAC cached: pycasbin / sloguard >= 10", us["rbac-casbin"], us["rbac-sloguard-cached"]
        ),
        _goal(
            "RS256 hot token: PyJWT / sloguard >= 10", us["token-pyjwt"], us["token-sloguard-hot"]
        ),
        _goal(
            "RS256 1,000 users: PyJWT / sloguard >= 10", us["token-pyjwt"], us["token-sloguard-mix"]
        ),
        _goal(
            "RS256 1,000 users + 1% new: PyJWT / sloguard >= 10",
            us["token-pyjwt"],
            us["token-sloguard-churn"],
        ),
    ]
    seeds = [
        {
            "variant": name,
            "label": variants[name]["label"],
            "us_per_decision": us[name],
            "cpu_ms_per_s": SEEDS_TPS * us[name] / 1000,
            "cores_busy": SEEDS_TPS * us[name] / 1e6,
        }
        for name in ("rbac-sloguard", "rbac-sloguard-cached", "rbac-casbin")
    ]
    profiles = {}
    if profile:
        for name, ops in (
            ("mw-guard-auth", 1_000 if quick else 10_000),
            ("rbac-sloguard", 2_000 if quick else 20_000),
        ):
            progress(f"auth: profile of {name}")
            profiles[name] = _profile_in_subprocess(name, sizes, ops)
    return {
        "name": NAME,
        "sizes": asdict(replace(sizes, rounds=rounds)),
        "fairness": FAIRNESS,
        "method": {
            "rounds": rounds,
            "warmup_rounds": 1,
            "timer": "time.perf_counter_ns around a loop of ops (cycling the request/token list)",
            "statistic": "median of rounds (min and max also reported)",
            "isolation": (
                "Each variant runs in its own fresh interpreter; within a group (rbac, token, "
                "middleware) rounds are interleaved across variants with a rotating start; "
                "gc.collect() before each round."
            ),
            "casbin_model": CASBIN_MODEL,
        },
        "variants": variants,
        "agreement": _agreement(variants, sizes),
        "goals": goals,
        "seeds_framing": {"tps": SEEDS_TPS, "tenants": sizes.tenants, "rows": seeds},
        "middleware_added_us": added,
        "profiles": profiles,
    }


# --- tables -------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]not met[/red]"


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def tables(result: dict[str, Any]) -> list[Table]:
    """The printed form of :func:`run`'s result."""
    variants, sizes = result["variants"], result["sizes"]
    rounds = result["method"]["rounds"]
    rbac = _table(
        f"RBAC decisions: {sizes['tenants']} tenants x {sizes['roles']} roles x "
        f"{sizes['rules']:,} rules, {sizes['requests']:,} distinct requests "
        f"(median of {rounds} rounds)",
        ("engine", "us/decision", "min", "max", "decisions/s", "allowed", "pycasbin / this"),
    )
    for v in (v for v in variants.values() if v["group"] == "rbac"):
        rbac.add_row(
            v["label"],
            f"{v['median_us']:.2f}",
            f"{v['min_us']:.2f}",
            f"{v['max_us']:.2f}",
            _rate(v["per_second"]),
            f"{v['allowed_share']:.0%}",
            f"{v['peer_speedup']:.0f}x" if v["variant"] != "rbac-casbin" else "-",
        )
    casbin = variants["rbac-casbin"]
    rbac.caption = (
        f"pycasbin: {casbin['policy_lines']:,} p lines, {casbin['grouping_lines']:,} g lines, "
        f"{casbin['enforce_calls_per_decision']:.2f} enforce() calls per decision, "
        f"{casbin['us_per_enforce']:.0f} us per enforce(); sloguard cache: "
        f"{variants['rbac-sloguard-cached']['cache_entries']:,} entries"
    )
    agreement = result["agreement"]
    agree = _table(
        f"RBAC agreement with pycasbin: {agreement['random_requests']} of the requests + "
        f"{agreement['binding_probes']} deep-binding probes",
        ("engine", "compared", "agree", "rate", "allowed"),
    )
    for name in ("rbac-sloguard", "rbac-sloguard-cached"):
        a = agreement[name]
        agree.add_row(
            variants[name]["label"],
            str(a["compared"]),
            str(a["agree"]),
            f"{a['rate']:.1%}",
            str(a["allowed"]),
        )
    framing = result["seeds_framing"]
    seeds = _table(
        f"The seeds' framing: {framing['tps']:,} decisions/s across {framing['tenants']} "
        "tenants (cost per decision = its latency without queueing)",
        ("engine", "us per decision", "CPU ms per second", "cores busy"),
    )
    for row in framing["rows"]:
        seeds.add_row(
            row["label"],
            f"{row['us_per_decision']:.2f}",
            f"{row['cpu_ms_per_s']:.1f}",
            f"{row['cores_busy']:.3f}",
        )
    tokens = _table(
        f"Token verification, RS256 2048-bit (median of {rounds} rounds)",
        ("variant", "us/token", "min", "max", "tokens/s", "PyJWT / this", "cache hits/misses"),
    )
    for v in (v for v in variants.values() if v["group"] == "token"):
        hits = v.get("cache_hits")
        tokens.add_row(
            v["label"],
            f"{v['median_us']:.2f}",
            f"{v['min_us']:.2f}",
            f"{v['max_us']:.2f}",
            _rate(v["per_second"]),
            f"{v['peer_speedup']:.1f}x" if v["variant"] != "token-pyjwt" else "-",
            "-" if hits is None else f"{hits:,}/{v['cache_misses']:,}",
        )
    guard = variants["mw-guard"]
    middleware = _table(
        f"Auth middleware, in-process ASGI, GET /items/{{item_id}} with a bearer token "
        f"(median of {rounds} rounds x {guard['ops_per_round']:,} requests)",
        ("variant", "us/request", "min", "max", "vs guard without auth", "statuses"),
    )
    for v in (v for v in variants.values() if v["group"] == "middleware"):
        middleware.add_row(
            v["label"],
            f"{v['median_us']:.1f}",
            f"{v['min_us']:.1f}",
            f"{v['max_us']:.1f}",
            "-"
            if v["variant"] != "mw-guard-auth"
            else f"{v['median_us'] - guard['median_us']:+.1f}",
            ", ".join(f"{k}: {n:,}" for k, n in v["statuses"].items()),
        )
    auth = variants["mw-guard-auth"]
    middleware.caption = (
        f"auth: token cache {auth['token_cache']['hits']:,} hits / "
        f"{auth['token_cache']['misses']:,} misses, {auth['decision_cache_entries']} cached "
        f"decisions; a request without the token got {auth['status_without_token']}"
    )
    goals = _table("Auth goals", ("goal", "measured", "limit", "result"))
    for goal in result["goals"]:
        goals.add_row(
            goal["goal"],
            f"{goal['theirs_us']:.2f} / {goal['ours_us']:.2f} us = {goal['speedup']:.1f}x",
            f">= {goal['limit']:.0f}x",
            _met(goal["met"]),
        )
    out = [rbac, agree, seeds, tokens, middleware, goals]
    profiles = result["profiles"]
    for name, order in _PRINTED_PROFILES:
        if name in profiles:
            out.append(_profile_table(profiles[name], order))
    return out


_PRINTED_PROFILES = (
    ("mw-guard-auth", "cumulative"),
    ("mw-guard-auth", "auth"),
    ("mw-guard-auth", "tottime"),
    ("rbac-sloguard", "tottime"),
)
_ORDER_TITLES = {
    "cumulative": "top {n} by cumulative time",
    "auth": "sloguard.auth and its middleware only, top {n} by cumulative time",
    "tottime": "top {n} by own time",
}


def _profile_table(profile: dict[str, Any], order: str) -> Table:
    unit, rows = profile["unit"], profile[order]
    what = _ORDER_TITLES[order].format(n=len(rows))
    title = f"cProfile of {profile['variant']}, {profile['ops']:,} {unit}s: {what} (us per {unit})"
    table = _table(title, ("function", "ncalls", "cum us", "own us"))
    for row in rows:
        table.add_row(
            row["function"],
            str(row["ncalls"]),
            f"{row['cumtime_us_per_op']:.2f}",
            f"{row['tottime_us_per_op']:.2f}",
        )
    return table


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=("serve", "profile"))
    parser.add_argument("variant", choices=sorted(_BY_NAME))
    parser.add_argument("--ops", type=int, required=True)
    parser.add_argument("--sizes", default="{}", help="JSON of Sizes fields")
    parser.add_argument("--top", type=int, default=PROFILE_TOP)
    parser.add_argument("--out", type=Path, help="write the profile's JSON here")
    args = parser.parse_args(argv)
    sizes = Sizes(**json.loads(args.sizes))
    if args.action == "serve":
        _serve(args.variant, sizes, args.ops)
        return
    result = profile_variant(args.variant, sizes, args.ops, args.top)
    if args.out is None:
        for row in result["cumulative"]:
            print(
                f"{row['ncalls']:>8} {row['cumtime_us_per_op']:9.2f} "
                f"{row['tottime_us_per_op']:9.2f}  {row['function']}"
            )
        return
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    _main()
