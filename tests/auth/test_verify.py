import asyncio
import re
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sloguard.auth._claims import ClaimsMapping
from sloguard.auth._errors import ExpiredToken, InvalidClaims, InvalidSignature, MalformedToken
from sloguard.auth._keys import KeySet, StaticKey
from sloguard.auth._verify import TokenVerifier, check_time_claims

NOW = 1_700_000_000.0
ISSUER = "https://idp.example"
AUDIENCE = "orders-api"


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims(**overrides: Any) -> dict[str, Any]:
    return {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 600,
        **overrides,
    }


def verifier(key: StaticKey, clock: FakeClock | None = None, **options: Any) -> TokenVerifier:
    return TokenVerifier(
        KeySet([key]), issuers=[ISSUER], audiences=[AUDIENCE], clock=clock or FakeClock(), **options
    )


def rsa_verifier(
    rsa_key: rsa.RSAPrivateKey, clock: FakeClock | None = None, **options: Any
) -> TokenVerifier:
    return verifier(StaticKey(rsa_key, kid="r1", algorithms={"RS256"}), clock, **options)


def rsa_token(rsa_key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), rsa_key, algorithm="RS256", headers={"kid": "r1"})


SIGNERS = {
    "HS256": lambda: b"h" * 32,
    "HS384": lambda: b"h" * 48,
    "HS512": lambda: b"h" * 64,
    "RS256": lambda: rsa.generate_private_key(65537, 2048),
    "PS256": lambda: rsa.generate_private_key(65537, 2048),
    "RS512": lambda: rsa.generate_private_key(65537, 2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ES512": lambda: ec.generate_private_key(ec.SECP521R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


@pytest.mark.parametrize("alg", SIGNERS)
def test_verify_accepts_a_valid_token_for_every_supported_algorithm(alg: str) -> None:
    signing_key = SIGNERS[alg]()
    token = jwt.encode(claims(), signing_key, algorithm=alg, headers={"kid": "k"})
    check = verifier(StaticKey(signing_key, kid="k", algorithms={alg}))
    assert asyncio.run(check.verify(token))["sub"] == "alice"
    assert check.verify_sync(token)["aud"] == AUDIENCE


def test_a_cache_hit_returns_the_claims_without_verifying_again(rsa_key: rsa.RSAPrivateKey) -> None:
    check = rsa_verifier(rsa_key)
    token = rsa_token(rsa_key)
    first = check.verify_sync(token)
    first["sub"] = "mallory"  # callers get copies: the cache cannot be poisoned
    assert check.verify_sync(token)["sub"] == "alice"
    assert (check.cache.hits, check.cache.misses) == (1, 1)
    assert len(check.cache) == 1


def test_the_cache_is_keyed_by_the_token_digest_never_the_token(rsa_key: rsa.RSAPrivateKey) -> None:
    check = rsa_verifier(rsa_key)
    token = rsa_token(rsa_key)
    check.verify_sync(token)
    (digest,) = check.cache._entries
    assert len(digest) == 32
    assert token.encode() not in digest


def test_a_cached_token_expires_at_exp_plus_leeway(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    check = rsa_verifier(rsa_key, clock, leeway_s=30)
    token = rsa_token(rsa_key, exp=NOW + 60)
    check.verify_sync(token)
    clock.now = NOW + 89
    assert check.verify_sync(token)["sub"] == "alice"
    clock.now = NOW + 90
    with pytest.raises(ExpiredToken):
        check.verify_sync(token)
    assert len(check.cache) == 0


def test_a_cached_token_is_reverified_after_the_cache_ttl(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    check = rsa_verifier(rsa_key, clock, cache_ttl_s=10)
    token = rsa_token(rsa_key)
    check.verify_sync(token)
    clock.now = NOW + 10
    check.verify_sync(token)
    assert (check.cache.hits, check.cache.misses) == (0, 2)


def test_a_cache_hit_rechecks_nbf_when_the_clock_goes_back(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    check = rsa_verifier(rsa_key, clock, leeway_s=0)
    token = rsa_token(rsa_key, nbf=NOW)
    check.verify_sync(token)
    clock.now = NOW - 5
    with pytest.raises(ExpiredToken, match="not valid yet"):
        check.verify_sync(token)


def test_the_cache_is_a_bounded_lru(rsa_key: rsa.RSAPrivateKey) -> None:
    check = rsa_verifier(rsa_key, cache_size=2)
    tokens = [rsa_token(rsa_key, jti=str(n)) for n in range(3)]
    check.verify_sync(tokens[0])
    check.verify_sync(tokens[1])
    check.verify_sync(tokens[0])  # refresh 0: 1 is now the oldest
    check.verify_sync(tokens[2])
    assert len(check.cache) == 2
    check.verify_sync(tokens[0])
    assert check.cache.hits == 2


@pytest.mark.parametrize(
    ("overrides", "options", "error"),
    [
        pytest.param({"exp": NOW - 29}, {}, None, id="expired-within-leeway"),
        pytest.param({"exp": NOW - 30}, {}, ExpiredToken, id="expired-at-leeway"),
        pytest.param({"nbf": NOW + 30}, {}, None, id="nbf-within-leeway"),
        pytest.param({"nbf": NOW + 31}, {}, ExpiredToken, id="nbf-beyond-leeway"),
        pytest.param({"iat": NOW + 300}, {}, None, id="iat-at-the-future-limit"),
        pytest.param({"iat": NOW + 301}, {}, ExpiredToken, id="iat-beyond-the-future-limit"),
        pytest.param({"exp": "tomorrow"}, {}, InvalidClaims, id="exp-a-string"),
        pytest.param({"exp": True}, {}, InvalidClaims, id="exp-a-bool"),
        pytest.param({"iat": 10**400}, {}, InvalidClaims, id="iat-too-large-for-a-float"),
        pytest.param({"exp": None}, {}, InvalidClaims, id="exp-required-by-default"),
        pytest.param(
            {"exp": None}, {"required_claims": ()}, None, id="exp-optional-when-configured"
        ),
        pytest.param(
            {}, {"required_claims": ("exp", "jti")}, InvalidClaims, id="extra-required-claim"
        ),
        pytest.param({"sub": 42}, {}, InvalidClaims, id="sub-not-a-string"),
    ],
)
def test_time_and_required_claims_follow_the_configuration(
    rsa_key: rsa.RSAPrivateKey,
    overrides: dict[str, Any],
    options: dict[str, Any],
    error: type[Exception] | None,
) -> None:
    token = rsa_token(rsa_key, **overrides)
    check = rsa_verifier(rsa_key, **options)
    if error is None:
        assert check.verify_sync(token)["sub"] == overrides.get("sub", "alice")
    else:
        with pytest.raises(error):
            check.verify_sync(token)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_exp_never_means_forever(value: float) -> None:
    with pytest.raises(InvalidClaims, match="'exp' is not a NumericDate"):
        check_time_claims({"exp": value}, now=NOW, leeway_s=0, max_future_iat_s=0)


def test_empty_issuers_skip_the_issuer_check_but_empty_audiences_refuse_an_aud(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    key = StaticKey(rsa_key, kid="r1", algorithms={"RS256"})
    check = TokenVerifier(KeySet([key]), issuers=(), audiences=(), clock=FakeClock())
    assert check.verify_sync(rsa_token(rsa_key, iss="anyone", aud=None))["iss"] == "anyone"
    with pytest.raises(InvalidClaims, match="audience"):
        check.verify_sync(rsa_token(rsa_key))


def test_several_audiences_and_issuers_each_pass(rsa_key: rsa.RSAPrivateKey) -> None:
    key = StaticKey(rsa_key, kid="r1", algorithms={"RS256"})
    check = TokenVerifier(
        KeySet([key]), issuers=["a", "b"], audiences=["x", "y"], clock=FakeClock()
    )
    assert check.verify_sync(rsa_token(rsa_key, iss="b", aud=["z", "y"]))["iss"] == "b"


def test_keys_from_several_sources_are_all_consulted(rsa_key: rsa.RSAPrivateKey) -> None:
    secret = StaticKey(b"h" * 32, kid="h1", algorithms={"HS256"})
    public = StaticKey(rsa_key, kid="r1", algorithms={"RS256"})
    check = TokenVerifier(
        [KeySet([secret]), KeySet([public])],
        issuers=[ISSUER],
        audiences=[AUDIENCE],
        clock=FakeClock(),
    )
    assert check.verify_sync(rsa_token(rsa_key))["sub"] == "alice"
    with pytest.raises(InvalidSignature, match="unknown key id"):
        check.verify_sync(
            jwt.encode(claims(), b"h" * 32, algorithm="HS256", headers={"kid": "nope"})
        )


def test_the_verifier_refuses_an_oversized_token_before_parsing_it(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    check = rsa_verifier(rsa_key, max_token_bytes=1024)
    token = rsa_token(rsa_key, pad="x" * 600)
    with pytest.raises(MalformedToken, match="too large"):
        check.verify_sync(token)
    assert len(check.cache) == 0


def test_a_non_ascii_token_is_malformed(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(MalformedToken, match="not ASCII"):
        rsa_verifier(rsa_key).verify_sync("é.é.é")


@pytest.mark.parametrize(
    ("mapping", "token_claims", "expected"),
    [
        pytest.param(
            ClaimsMapping(),
            {"sub": "u", "roles": ["a", "b"]},
            ({"a", "b"}, None, set()),
            id="defaults-list",
        ),
        pytest.param(
            ClaimsMapping(),
            {"sub": "u", "roles": "a b", "tenant": "t1"},
            ({"a", "b"}, "t1", set()),
            id="roles-string",
        ),
        pytest.param(
            ClaimsMapping(),
            {"sub": "u", "scope": "read write"},
            (set(), None, {"read", "write"}),
            id="scope-string",
        ),
        pytest.param(
            ClaimsMapping(), {"sub": "u", "scp": ["read"]}, (set(), None, {"read"}), id="scp-list"
        ),
        pytest.param(
            ClaimsMapping(roles="realm_access.roles", tenant="org.id"),
            {"sub": "u", "realm_access": {"roles": ["admin"]}, "org": {"id": "acme"}},
            ({"admin"}, "acme", set()),
            id="keycloak-nested",
        ),
        pytest.param(
            ClaimsMapping(roles=("https://ex.com/roles", "groups")),
            {"sub": "u", "https://ex.com/roles": ["a"], "groups": "g"},
            ({"a", "g"}, None, set()),
            id="namespaced-and-several-paths",
        ),
        pytest.param(
            ClaimsMapping(roles=None, tenant=None),
            {"sub": "u", "roles": ["a"], "tenant": "t"},
            (set(), None, set()),
            id="disabled",
        ),
    ],
)
def test_claims_mapping_builds_the_principal(
    mapping: ClaimsMapping,
    token_claims: dict[str, Any],
    expected: tuple[set[str], str | None, set[str]],
) -> None:
    principal = mapping.to_principal({"iss": ISSUER, **token_claims})
    assert (principal.roles, principal.tenant, principal.scopes) == expected
    assert (principal.subject, principal.issuer) == ("u", ISSUER)


@pytest.mark.parametrize(
    ("token_claims", "detail"),
    [
        pytest.param({}, "'sub' (subject) is missing", id="no-subject"),
        pytest.param(
            {"sub": "u", "roles": [1, "secret-value"]},
            "'roles' is not a string or a list",
            id="roles-not-strings",
        ),
        pytest.param(
            {"sub": "u", "tenant": ["secret-value"]},
            "'tenant' (tenant) is not a string",
            id="tenant-a-list",
        ),
    ],
)
def test_claims_mapping_refuses_badly_shaped_claims_without_echoing_them(
    token_claims: dict[str, Any], detail: str
) -> None:
    with pytest.raises(InvalidClaims, match=re.escape(detail)) as caught:
        ClaimsMapping().to_principal(token_claims)
    assert "secret-value" not in str(caught.value)
