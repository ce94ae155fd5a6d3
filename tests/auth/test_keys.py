import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from sloguard.auth._errors import InvalidSignature
from sloguard.auth._keys import KeySet, StaticKey, algorithm_family

SECRET = b"s" * 64


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: Any) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("make_key", "expected"),
    [
        pytest.param(lambda: b"k" * 32, {"HS256"}, id="32-byte-secret"),
        pytest.param(lambda: b"k" * 64, {"HS256", "HS384", "HS512"}, id="64-byte-secret"),
        pytest.param(
            lambda: rsa.generate_private_key(65537, 2048).public_key(),
            {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
            id="rsa",
        ),
        pytest.param(
            lambda: rsa.generate_private_key(65537, 1024).public_key(),
            set(),
            id="rsa-1024-fits-nothing",
        ),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP256R1()).public_key(), {"ES256"}, id="p256"
        ),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP384R1()).public_key(), {"ES384"}, id="p384"
        ),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP521R1()).public_key(),
            {"ES512", "ES521"},
            id="p521",
        ),
        pytest.param(
            lambda: ed25519.Ed25519PrivateKey.generate().public_key(), {"EdDSA"}, id="ed25519"
        ),
    ],
)
def test_algorithm_family_follows_the_key_type_alone(make_key: Any, expected: set[str]) -> None:
    assert algorithm_family(make_key()) == expected


@pytest.mark.parametrize(
    ("material", "algorithms"),
    [
        pytest.param(SECRET, {"RS256"}, id="secret-as-rsa"),
        pytest.param(SECRET, {"none"}, id="none-with-secret"),
        pytest.param(b"short-secret", {"HS256"}, id="secret-shorter-than-hash"),
        pytest.param(b"k" * 32, {"HS512"}, id="secret-too-short-for-hs512"),
        pytest.param(SECRET, set(), id="no-algorithms"),
    ],
)
def test_static_key_refuses_algorithms_outside_its_family(
    material: bytes, algorithms: set[str]
) -> None:
    with pytest.raises(ValueError) as caught:
        StaticKey(material, algorithms=algorithms)
    assert material.decode() not in str(caught.value)


def test_an_rsa_public_key_pem_can_never_become_an_hmac_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="cannot be used with this 2048-bit RSA key"):
        StaticKey(pem(rsa_key.public_key()), algorithms={"HS256", "RS256"})


def test_jwk_json_text_is_never_taken_for_an_hmac_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="looks like a JWK"):
        StaticKey(RSAAlgorithm.to_jwk(rsa_key.public_key()) + " " * 64, algorithms={"HS256"})


def test_a_private_key_pem_keeps_only_its_public_half(rsa_key: rsa.RSAPrivateKey) -> None:
    key = StaticKey(pem(rsa_key), kid="k1", algorithms={"RS256"})
    assert isinstance(key.key, rsa.RSAPublicKey)
    assert key.key.public_numbers() == rsa_key.public_key().public_numbers()
    assert "key=" not in repr(key)


def test_a_certificate_pem_yields_its_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = x509.CertificateBuilder(
        name, name, rsa_key.public_key(), 1, now, now + datetime.timedelta(days=1)
    ).sign(rsa_key, hashes.SHA256())
    key = StaticKey(cert.public_bytes(serialization.Encoding.PEM), algorithms={"PS256"})
    assert isinstance(key.key, rsa.RSAPublicKey)


@pytest.mark.parametrize(
    ("make_jwk", "algorithms"),
    [
        pytest.param(
            lambda: json.loads(
                RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key())
            ),
            {"RS256"},
            id="rsa",
        ),
        pytest.param(
            lambda: json.loads(
                ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key())
            ),
            {"ES384"},
            id="ec",
        ),
        pytest.param(
            lambda: json.loads(
                OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key())
            ),
            {"EdDSA"},
            id="okp",
        ),
        pytest.param(lambda: {"kty": "oct", "k": "c" * 43}, {"HS256"}, id="oct"),
    ],
)
def test_static_key_loads_jwk_dicts_through_pyjwk(make_jwk: Any, algorithms: set[str]) -> None:
    key = StaticKey({**make_jwk(), "kid": "from-jwk"}, algorithms=algorithms)
    assert key.kid == "from-jwk"
    assert key.algorithms == algorithms


def test_a_jwk_alg_outside_the_allowlist_is_refused() -> None:
    jwk = {"kty": "oct", "k": "c" * 43, "alg": "HS384"}
    with pytest.raises(ValueError, match="not among the allowed"):
        StaticKey(jwk, algorithms={"HS256"})


def test_a_jwk_alg_narrows_the_allowlist_to_itself() -> None:
    key = StaticKey({"kty": "oct", "k": "c" * 86, "alg": "HS384"}, algorithms={"HS256", "HS384"})
    assert key.algorithms == {"HS384"}


def test_from_file_reads_pem_jwk_and_secret_files(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    (tmp_path / "key.pem").write_bytes(pem(rsa_key.public_key()))
    (tmp_path / "key.jwk").write_text(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    assert isinstance(
        StaticKey.from_file(tmp_path / "key.pem", algorithms={"RS256"}).key, rsa.RSAPublicKey
    )
    assert isinstance(
        StaticKey.from_file(tmp_path / "key.jwk", algorithms={"RS256"}).key, rsa.RSAPublicKey
    )
    assert StaticKey.from_file(tmp_path / "secret", algorithms={"HS512"}).key == SECRET


def test_from_env_reads_a_secret_and_refuses_an_unset_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_JWT_SECRET", SECRET.decode())
    assert StaticKey.from_env("TEST_JWT_SECRET", kid="env", algorithms={"HS256"}).key == SECRET
    monkeypatch.delenv("TEST_JWT_SECRET")
    with pytest.raises(ValueError, match="TEST_JWT_SECRET is not set"):
        StaticKey.from_env("TEST_JWT_SECRET", algorithms={"HS256"})


def hmac_key(kid: str | None, *algorithms: str) -> StaticKey:
    return StaticKey(SECRET, kid=kid, algorithms=set(algorithms))


@pytest.mark.parametrize(
    ("keys", "kid", "alg", "expected"),
    [
        pytest.param(
            [hmac_key("a", "HS256"), hmac_key("b", "HS256")], "b", "HS256", 1, id="by-kid"
        ),
        pytest.param(
            [hmac_key("a", "HS256"), hmac_key("b", "HS512")], None, "HS512", 1, id="no-kid-one-fits"
        ),
        pytest.param(
            [hmac_key("a", "HS256"), hmac_key(None, "HS256")],
            "zzz",
            "HS256",
            1,
            id="unknown-kid-anonymous-key",
        ),
        pytest.param(
            [hmac_key("a", "HS256"), hmac_key("a", "HS384")],
            "a",
            "HS384",
            1,
            id="same-kid-two-algs",
        ),
    ],
)
def test_key_set_finds_the_one_fitting_key(
    keys: list[StaticKey], kid: str | None, alg: str, expected: int
) -> None:
    assert KeySet(keys).find(kid, alg) is keys[expected]


@pytest.mark.parametrize(
    ("keys", "kid", "alg", "detail"),
    [
        pytest.param([hmac_key("a", "HS256")], "b", "HS256", "unknown key id", id="unknown-kid"),
        pytest.param(
            [hmac_key("a", "HS256")], "a", "HS512", "algorithm not allowed", id="alg-not-on-key"
        ),
        pytest.param(
            [hmac_key("a", "HS256"), hmac_key("b", "HS256")],
            None,
            "HS256",
            "ambiguous",
            id="no-kid-two-fit",
        ),
        pytest.param([], None, "HS256", "no verification key", id="empty"),
    ],
)
def test_key_set_refuses_unknown_ambiguous_or_disallowed_lookups(
    keys: list[StaticKey], kid: str | None, alg: str, detail: str
) -> None:
    with pytest.raises(InvalidSignature, match=detail):
        KeySet(keys).find(kid, alg)
