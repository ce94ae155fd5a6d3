import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from sloguard.auth._errors import InvalidSignature
from sloguard.auth._keys import JWKSClient, parse_jwks
from sloguard.auth._verify import TokenVerifier

URL = "https://127.0.0.1/.well-known/jwks.json"
NOW = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeIdP:
    """The JWKS endpoint: publishes the public half of ``keys`` by kid."""

    def __init__(self, *kids: str) -> None:
        self.private: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []
        self.status = 200
        self.calls = 0
        for kid in kids:
            self.rotate_in(kid)

    def rotate_in(self, kid: str) -> None:
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published.append(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        return {
            **json.loads(RSAAlgorithm.to_jwk(self.private[kid].public_key())),
            "kid": kid,
            "use": "sig",
        }

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        await asyncio.sleep(0)  # let concurrent callers pile up behind this fetch
        if self.status != 200:
            return httpx.Response(self.status)
        return httpx.Response(200, json={"keys": [self.jwk(kid) for kid in self.published]})

    def token(self, kid: str, signer: str | None = None) -> str:
        claims = {"sub": "alice", "iss": "idp", "aud": "api", "exp": NOW + 600}
        return jwt.encode(
            claims, self.private[signer or kid], algorithm="RS256", headers={"kid": kid}
        )


@pytest.fixture(scope="module")
def shared_keys() -> dict[str, rsa.RSAPrivateKey]:
    return {
        kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")
    }


@pytest.fixture
def idp(shared_keys: dict[str, rsa.RSAPrivateKey]) -> FakeIdP:
    provider = FakeIdP()
    provider.private.update(shared_keys)
    provider.published.append("k1")
    return provider


def client(idp: FakeIdP, clock: FakeClock, **options: Any) -> JWKSClient:
    return JWKSClient(
        URL,
        algorithms={"RS256"},
        transport=httpx.MockTransport(idp.handler),
        clock=clock,
        **options,
    )


def verifier(jwks: JWKSClient) -> TokenVerifier:
    return TokenVerifier(jwks, issuers=["idp"], audiences=["api"], clock=lambda: NOW)


def test_keys_are_fetched_on_first_use_and_then_served_from_the_cache(idp: FakeIdP) -> None:
    check = verifier(client(idp, FakeClock()))

    async def twice() -> None:
        await check.verify(idp.token("k1"))
        check.cache.clear()
        await check.verify(idp.token("k1"))

    asyncio.run(twice())
    assert idp.calls == 1


def test_a_rotated_in_kid_triggers_exactly_one_refetch(idp: FakeIdP) -> None:
    clock = FakeClock()
    jwks = client(idp, clock)
    check = verifier(jwks)
    asyncio.run(check.verify(idp.token("k1")))
    idp.published.append("k2")
    clock.now += 60
    assert asyncio.run(check.verify(idp.token("k2")))["sub"] == "alice"
    assert asyncio.run(check.verify(idp.token("k1")))["sub"] == "alice"
    assert idp.calls == 2


def test_a_hundred_unknown_kids_cost_one_fetch(idp: FakeIdP) -> None:
    clock = FakeClock()
    jwks = client(idp, clock)
    asyncio.run(jwks.refresh())
    clock.now += 60
    forged = [idp.token(f"invented-{n}", signer="k1") for n in range(100)]

    async def flood() -> list[Any]:
        concurrent = await asyncio.gather(
            *(verifier(jwks).verify(t) for t in forged[:50]), return_exceptions=True
        )
        return concurrent + [await _outcome(verifier(jwks), t) for t in forged[50:]]

    outcomes = asyncio.run(flood())
    assert all(isinstance(o, InvalidSignature) and o.detail == "unknown key id" for o in outcomes)
    assert idp.calls == 2


def test_concurrent_requests_for_a_new_kid_wait_for_the_one_fetch_in_flight(idp: FakeIdP) -> None:
    clock = FakeClock()
    jwks = client(idp, clock)
    asyncio.run(jwks.refresh())
    idp.published.append("k2")
    clock.now += 60
    tokens = [idp.token("k2") for _ in range(20)]

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(verifier(jwks).verify(t) for t in tokens), return_exceptions=True
        )

    assert [o["sub"] if isinstance(o, dict) else o for o in asyncio.run(burst())] == ["alice"] * 20
    assert idp.calls == 2


async def _outcome(check: TokenVerifier, token: str) -> Any:
    try:
        return await check.verify(token)
    except InvalidSignature as exc:
        return exc


def test_unknown_kids_refetch_again_only_after_the_interval(idp: FakeIdP) -> None:
    clock = FakeClock()
    jwks = client(idp, clock, min_refetch_interval_s=30)
    asyncio.run(jwks.find("k1", "RS256"))
    for step in (10, 19, 1, 29, 1):  # at +10, +29, +30, +59, +60
        clock.now += step
        with pytest.raises(InvalidSignature):
            asyncio.run(jwks.find("nope", "RS256"))
    assert idp.calls == 3


def test_keys_are_refetched_when_the_ttl_passes(idp: FakeIdP) -> None:
    clock = FakeClock()
    jwks = client(idp, clock, ttl_s=300)
    asyncio.run(jwks.find("k1", "RS256"))
    clock.now += 299
    asyncio.run(jwks.find("k1", "RS256"))
    assert idp.calls == 1
    idp.published = ["k2"]
    clock.now += 1
    asyncio.run(jwks.find("k2", "RS256"))
    assert idp.calls == 2
    assert "k1" not in jwks.keys


def test_a_failing_endpoint_leaves_the_stale_keys_in_service(
    idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    jwks = client(idp, clock, ttl_s=300, min_refetch_interval_s=30)
    check = verifier(jwks)
    asyncio.run(check.verify(idp.token("k1")))
    idp.status = 503
    clock.now += 400
    check.cache.clear()
    with caplog.at_level(logging.WARNING, logger="sloguard.auth.jwks"):
        assert asyncio.run(check.verify(idp.token("k1")))["sub"] == "alice"
    assert "serving 1 cached key(s)" in caplog.text
    assert (idp.calls, jwks.failures, jwks.stale) == (2, 1, True)


def test_a_failing_endpoint_is_retried_after_the_interval_not_before(idp: FakeIdP) -> None:
    clock = FakeClock()
    jwks = client(idp, clock, ttl_s=300, min_refetch_interval_s=30)
    asyncio.run(jwks.find("k1", "RS256"))
    idp.status = 500
    clock.now += 300
    for _ in range(5):
        asyncio.run(jwks.find("k1", "RS256"))
    idp.status = 200
    clock.now += 30
    asyncio.run(jwks.find("k1", "RS256"))
    assert (idp.calls, jwks.stale) == (3, False)


def test_an_endpoint_down_from_the_start_rejects_tokens_without_crashing(idp: FakeIdP) -> None:
    idp.status = 500
    with pytest.raises(InvalidSignature, match="unknown key id"):
        asyncio.run(verifier(client(idp, FakeClock())).verify(idp.token("k1")))


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(200, json={"keys": []}), id="empty-set"),
        pytest.param(httpx.Response(200, content=b"<html>"), id="not-json"),
        pytest.param(httpx.Response(200, json=[1]), id="not-an-object"),
        pytest.param(
            httpx.Response(200, content=b'{"keys": [' + b" " * 600_000 + b"]}"), id="oversized"
        ),
        pytest.param(
            httpx.Response(302, headers={"location": "https://127.0.0.1:9/evil"}), id="redirect"
        ),
        pytest.param(httpx.Response(404), id="not-found"),
    ],
)
def test_an_unusable_document_never_replaces_a_good_one(
    idp: FakeIdP, response: httpx.Response
) -> None:
    clock = FakeClock()
    jwks = client(idp, clock)
    asyncio.run(jwks.refresh())
    jwks._transport = httpx.MockTransport(lambda request: response)
    clock.now += 400
    assert asyncio.run(jwks.refresh()) is False
    assert "k1" in jwks.keys


def test_the_sync_path_fetches_and_rate_limits_like_the_async_one(idp: FakeIdP) -> None:
    clock = FakeClock()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(200, json={"keys": [idp.jwk("k1")]})

    jwks = JWKSClient(
        URL, algorithms={"RS256"}, sync_transport=httpx.MockTransport(handler), clock=clock
    )
    check = TokenVerifier(jwks, issuers=["idp"], audiences=["api"], clock=lambda: NOW, cache_size=0)
    assert check.verify_sync(idp.token("k1"))["sub"] == "alice"
    with pytest.raises(InvalidSignature):
        check.verify_sync(idp.token("k2"))
    assert calls == ["GET"]


def test_threads_asking_for_a_new_kid_share_one_sync_fetch(idp: FakeIdP) -> None:
    clock = FakeClock()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        time.sleep(0.05)  # hold the fetch open so the other threads arrive during it
        return httpx.Response(200, json={"keys": [idp.jwk(kid) for kid in idp.published]})

    jwks = JWKSClient(
        URL, algorithms={"RS256"}, sync_transport=httpx.MockTransport(handler), clock=clock
    )
    jwks.refresh_sync()
    idp.published.append("k2")
    clock.now += 60
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: jwks.find_sync("k2", "RS256").kid, range(8)))
    assert (found, len(calls)) == (["k2"] * 8, 2)


def test_jwks_entries_that_are_not_signing_keys_for_allowed_algorithms_are_skipped() -> None:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    document = {
        "keys": [
            {**rsa_jwk, "kid": "good", "alg": "RS256", "use": "sig"},
            {**rsa_jwk, "kid": "no-alg"},
            {**rsa_jwk, "kid": "enc", "use": "enc"},
            {**rsa_jwk, "kid": "wrong-alg", "alg": "RS512"},
            {**rsa_jwk, "kid": "rsa-claims-hs", "alg": "HS256"},
            {**rsa_jwk, "kid": "ops", "key_ops": ["encrypt"]},
            {**ec_jwk, "kid": "ec-not-allowed"},
            {"kty": "oct", "k": "c" * 43, "kid": "shared-secret"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not-a-key",
        ]
    }
    keys = parse_jwks(json.dumps(document).encode(), frozenset({"RS256", "PS256"}))
    assert sorted(key.kid or "" for key in keys) == ["good", "no-alg"]
    assert {key.kid: key.algorithms for key in keys}["no-alg"] == {"RS256", "PS256"}


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param("https://idp.example/jwks", True, id="https"),
        pytest.param("http://127.0.0.1:8080/jwks", True, id="http-loopback"),
        pytest.param("http://idp.example/jwks", False, id="http-remote"),
        pytest.param("file:///etc/passwd", False, id="file"),
    ],
)
def test_a_jwks_url_must_be_https_except_on_loopback(url: str, ok: bool) -> None:
    if ok:
        assert JWKSClient(url, algorithms={"RS256"}).url == url
    else:
        with pytest.raises(ValueError, match="https"):
            JWKSClient(url, algorithms={"RS256"})
