"""Every classic JWT attack, end to end: request headers in, the right public code out."""

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sloguard.auth._errors import (
    AuthError,
    ExpiredToken,
    InvalidClaims,
    InvalidSignature,
    MalformedToken,
    MissingToken,
)
from sloguard.auth._keys import JWKSClient, KeySet, StaticKey
from sloguard.auth._tokens import extract_token
from sloguard.auth._verify import TokenVerifier

NOW = 1_700_000_000.0
ISSUER = "https://idp.example"
AUDIENCE = "orders-api"
SECRET = b"our-hmac-secret-".ljust(32, b"x")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Kit:
    ours: rsa.RSAPrivateKey
    attacker: rsa.RSAPrivateKey
    verifier: TokenVerifier

    def claims(self, **overrides: Any) -> dict[str, Any]:
        base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 600}
        return {k: v for k, v in {**base, **overrides}.items() if v is not None}

    def signed(self, key: Any = None, alg: str = "RS256", **headers: Any) -> str:
        headers = {"kid": "r1", **headers}
        return jwt.encode(self.claims(), key or self.ours, algorithm=alg, headers=headers)

    def public_pem(self) -> bytes:
        return self.ours.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def forge(
    header: dict[str, Any], payload: Any, sign: Callable[[bytes], bytes] = lambda _: b""
) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.fixture(scope="module")
def kit() -> Kit:
    ours = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = KeySet(
        [
            StaticKey(ours, kid="r1", algorithms={"RS256"}),
            StaticKey(SECRET, kid="h1", algorithms={"HS256"}),
        ]
    )
    verifier = TokenVerifier(
        keys, issuers=[ISSUER], audiences=[AUDIENCE], clock=lambda: NOW, cache_size=0
    )
    return Kit(ours, attacker, verifier)


def bearer(token: str) -> tuple[dict[str, str], str]:
    return {"authorization": f"Bearer {token}"}, ""


def none_alg(spelling: str, signature: bytes = b"") -> Callable[[Kit], tuple[dict[str, str], str]]:
    return lambda k: bearer(forge({"alg": spelling, "kid": "r1"}, k.claims(), lambda _: signature))


def hs256_with_public_pem(kid: str | None) -> Callable[[Kit], tuple[dict[str, str], str]]:
    def build(k: Kit) -> tuple[dict[str, str], str]:
        header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
        return bearer(
            forge(
                header,
                k.claims(),
                lambda data: hmac.new(k.public_pem(), data, hashlib.sha256).digest(),
            )
        )

    return build


def attacker_embedded_jwk(k: Kit) -> tuple[dict[str, str], str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(k.attacker.public_key()))
    return bearer(k.signed(k.attacker, jwk=jwk))


def tampered_payload(k: Kit) -> tuple[dict[str, str], str]:
    header, _, signature = k.signed().split(".")
    return bearer(f"{header}.{b64(json.dumps(k.claims(sub='admin')).encode())}.{signature}")


def tampered_signature(k: Kit) -> tuple[dict[str, str], str]:
    header, payload, signature = k.signed().split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    return bearer(f"{header}.{payload}.{flipped}")


def signed_raw(payload: bytes, **header: Any) -> Callable[[Kit], tuple[dict[str, str], str]]:
    return lambda k: bearer(
        jwt.api_jws.encode(payload, k.ours, algorithm="RS256", headers={"kid": "r1", **header})
    )


def claims_token(**overrides: Any) -> Callable[[Kit], tuple[dict[str, str], str]]:
    return lambda k: bearer(
        jwt.encode(k.claims(**overrides), k.ours, algorithm="RS256", headers={"kid": "r1"})
    )


ATTACKS = [
    pytest.param(none_alg("none"), InvalidSignature, id="alg-none"),
    pytest.param(none_alg("None"), InvalidSignature, id="alg-None"),
    pytest.param(none_alg("NONE"), InvalidSignature, id="alg-NONE"),
    pytest.param(none_alg("nOnE", b"sig"), InvalidSignature, id="alg-none-with-a-signature"),
    pytest.param(
        hs256_with_public_pem("r1"),
        InvalidSignature,
        id="hs256-with-rsa-pem-as-secret-kid-of-rsa-key",
    ),
    pytest.param(
        hs256_with_public_pem(None), InvalidSignature, id="hs256-with-rsa-pem-as-secret-no-kid"
    ),
    pytest.param(
        hs256_with_public_pem("h1"),
        InvalidSignature,
        id="hs256-with-rsa-pem-as-secret-kid-of-hmac-key",
    ),
    pytest.param(
        lambda k: bearer(k.signed(kid="../../etc/passwd")),
        InvalidSignature,
        id="kid-path-traversal",
    ),
    pytest.param(
        lambda k: bearer(k.signed(kid="x' UNION SELECT 'k' --")),
        InvalidSignature,
        id="kid-sql-injection",
    ),
    pytest.param(
        lambda k: bearer(k.signed(kid="|cat /etc/shadow")),
        InvalidSignature,
        id="kid-command-injection",
    ),
    pytest.param(lambda k: bearer(k.signed(kid="r1\x00.pem")), InvalidSignature, id="kid-nul-byte"),
    pytest.param(
        lambda k: bearer(forge({"alg": "RS256", "kid": {"$ne": ""}}, k.claims(), lambda _: b"s")),
        MalformedToken,
        id="kid-an-object",
    ),
    pytest.param(
        lambda k: bearer(k.signed(k.attacker, jku="https://127.0.0.1:1/jwks")),
        InvalidSignature,
        id="jku-elsewhere",
    ),
    pytest.param(
        lambda k: bearer(k.signed(k.attacker, x5u="https://127.0.0.1:1/cert")),
        InvalidSignature,
        id="x5u-elsewhere",
    ),
    pytest.param(attacker_embedded_jwk, InvalidSignature, id="embedded-jwk"),
    pytest.param(
        lambda k: bearer(k.signed(k.attacker, x5c=["MIIB"])), InvalidSignature, id="embedded-x5c"
    ),
    pytest.param(
        lambda k: bearer(k.signed(alg="RS512")), InvalidSignature, id="alg-not-on-the-key"
    ),
    pytest.param(
        lambda k: bearer(k.signed(SECRET, alg="HS256", kid="r1")),
        InvalidSignature,
        id="hmac-key-under-rsa-kid",
    ),
    pytest.param(claims_token(exp=NOW - 31), ExpiredToken, id="expired"),
    pytest.param(claims_token(nbf=NOW + 3600), ExpiredToken, id="nbf-in-the-future"),
    pytest.param(claims_token(iat=NOW + 86400), ExpiredToken, id="iat-far-in-the-future"),
    pytest.param(claims_token(aud="billing-api"), InvalidClaims, id="wrong-aud"),
    pytest.param(claims_token(aud=None), InvalidClaims, id="missing-aud"),
    pytest.param(claims_token(iss="https://evil.example"), InvalidClaims, id="wrong-iss"),
    pytest.param(claims_token(exp=None), InvalidClaims, id="missing-exp"),
    pytest.param(tampered_payload, InvalidSignature, id="tampered-payload"),
    pytest.param(tampered_signature, InvalidSignature, id="tampered-signature"),
    pytest.param(lambda k: bearer(k.signed(pad="x" * 9000)), MalformedToken, id="oversized-token"),
    pytest.param(
        lambda k: bearer("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0!.c2ln"),
        MalformedToken,
        id="bad-base64",
    ),
    pytest.param(
        lambda k: bearer("eyJhbGciOiJSUzI1NiJ9.e30=.c2ln"), MalformedToken, id="base64-padding"
    ),
    pytest.param(
        lambda k: bearer(f"{b64(b'{alg: RS256}')}.e30.c2ln"), MalformedToken, id="header-not-json"
    ),
    pytest.param(signed_raw(b"{not json"), MalformedToken, id="payload-not-json"),
    pytest.param(signed_raw(b"[1, 2]"), MalformedToken, id="payload-not-an-object"),
    pytest.param(lambda k: bearer(k.signed(crit=["exp"])), MalformedToken, id="crit-header"),
    pytest.param(
        signed_raw(b"", b64=False, crit=["b64"]), MalformedToken, id="crit-b64-unencoded-payload"
    ),
    pytest.param(
        lambda k: ({}, f"access_token={k.signed()}"), MissingToken, id="query-token-not-enabled"
    ),
    pytest.param(
        lambda k: ({"authorization": f"Bearer {k.signed()} {k.signed()}"}, ""),
        MalformedToken,
        id="two-credentials",
    ),
    pytest.param(
        lambda k: ({"authorization": f"Bearer {k.signed()}, Bearer {k.signed()}"}, ""),
        MalformedToken,
        id="two-authorization-headers",
    ),
]


@pytest.mark.parametrize(("build", "error"), ATTACKS)
def test_attack_is_rejected_with_its_public_code(
    kit: Kit, build: Callable[[Kit], tuple[dict[str, str], str]], error: type[AuthError]
) -> None:
    headers, query = build(kit)
    with pytest.raises(AuthError) as caught:
        kit.verifier.verify_sync(extract_token(headers, query))
    assert type(caught.value) is error
    assert caught.value.code == error.code
    assert caught.value.status == 401


@pytest.mark.parametrize(("build", "error"), ATTACKS)
def test_rejection_details_never_leak_token_or_key(
    kit: Kit, build: Callable[[Kit], tuple[dict[str, str], str]], error: type[AuthError]
) -> None:
    headers, query = build(kit)
    secrets = [*headers.values(), query, SECRET.decode(), kit.public_pem().decode()[30:90]]
    with pytest.raises(error) as caught:
        kit.verifier.verify_sync(extract_token(headers, query))
    leaked = f"{caught.value} {caught.value.www_authenticate}"
    assert not [s for s in secrets if s and (s in leaked or s.split(".")[0] in leaked)]


def test_the_genuine_token_passes_the_same_pipeline(kit: Kit) -> None:
    headers, query = bearer(kit.signed())
    assert kit.verifier.verify_sync(extract_token(headers, query))["sub"] == "alice"


def test_jku_and_x5u_are_never_fetched_even_with_a_jwks_client(kit: Kit) -> None:
    requested: list[str] = []
    jwk = {**json.loads(RSAAlgorithm.to_jwk(kit.ours.public_key())), "kid": "r1"}

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, json={"keys": [jwk]})

    jwks = JWKSClient(
        "https://127.0.0.1/jwks.json", algorithms={"RS256"}, transport=httpx.MockTransport(handler)
    )
    verifier = TokenVerifier(jwks, issuers=[ISSUER], audiences=[AUDIENCE], clock=lambda: NOW)
    forged = kit.signed(
        kit.attacker, kid="evil", jku="https://127.0.0.1:9/evil", x5u="https://127.0.0.1:9/x"
    )
    with pytest.raises(InvalidSignature, match="unknown key id"):
        asyncio.run(verifier.verify(forged))
    assert requested == ["https://127.0.0.1/jwks.json"]
