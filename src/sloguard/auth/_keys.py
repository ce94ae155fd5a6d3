"""Verification keys, each bound to the algorithms it may verify.

RFC 8725 §2.1 and §3.1: the token's ``alg`` header must never choose how the
key is interpreted. So a :class:`StaticKey` is loaded once, its type decides
which algorithm *family* it can serve (HS* for a shared secret, RS*/PS* for
RSA, ES* for the matching curve, EdDSA for Ed25519/Ed448), and its configured
allowlist must sit inside that family, checked at construction. At request
time :meth:`StaticKey.accepts` is a set lookup: an RSA public key can never
become an HMAC secret, and ``none`` is in no family.

A :class:`KeySet` finds the key for a token by ``kid`` (a dict lookup and
nothing else: a ``kid`` never names a file, a URL or a query). Keys are
loaded from PEM (public key, private key or certificate: only the public half
is kept), a JWK dict (through PyJWT's ``PyJWK``), raw HMAC secret bytes, a
file, or an environment variable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from sloguard.auth._errors import InvalidSignature

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "JWKSClient",
    "KeyMaterial",
    "KeySet",
    "StaticKey",
    "VerifyingKey",
    "algorithm_family",
    "parse_jwks",
]

VerifyingKey: TypeAlias = (
    bytes
    | rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
)
KeyMaterial: TypeAlias = (
    str
    | bytes
    | Mapping[str, Any]
    | VerifyingKey
    | rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

_HMAC = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: secret >= hash size
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC = {
    "secp256r1": frozenset({"ES256"}),
    "secp384r1": frozenset({"ES384"}),
    "secp521r1": frozenset({"ES512", "ES521"}),
    "secp256k1": frozenset({"ES256K"}),
}
_OKP = frozenset({"EdDSA"})
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset({*_HMAC, *_RSA, *_OKP}.union(*_EC.values()))
_MIN_RSA_BITS = 2048
# PyJWK picks the parsing algorithm from kty/crv when we name one for it;
# the JWK's own "alg" is checked against the family afterwards.
_JWK_PARSER = {"RSA": "RS256", "OKP": "EdDSA", "oct": "HS256"}
_JWK_EC_PARSER = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}


def algorithm_family(key: VerifyingKey) -> frozenset[str]:
    """Every algorithm this key's type can verify (before any allowlist)."""
    if isinstance(key, bytes):
        return frozenset(alg for alg, size in _HMAC.items() if len(key) >= size)
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA if key.key_size >= _MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC.get(key.curve.name, frozenset())
    return _OKP  # Ed25519 / Ed448: the VerifyingKey union leaves nothing else


@dataclass(frozen=True, slots=True, init=False)
class StaticKey:
    """One verification key, its optional ``kid``, and the algorithms it accepts."""

    key: VerifyingKey = field(repr=False)
    kid: str | None
    algorithms: frozenset[str]

    def __init__(
        self,
        material: KeyMaterial,
        *,
        kid: str | None = None,
        algorithms: Iterable[str],
    ) -> None:
        allowed = frozenset(algorithms)
        if isinstance(material, Mapping):
            key, jwk_kid, jwk_alg = _from_jwk(material)
            kid = kid if kid is not None else jwk_kid
            if jwk_alg is not None:
                if jwk_alg not in allowed:
                    raise ValueError(
                        f"the JWK's alg {jwk_alg!r} is not among the allowed algorithms"
                    )
                allowed = frozenset({jwk_alg})
        else:
            key = _load(material)
        if not allowed:
            raise ValueError("a key needs at least one allowed algorithm")
        family = algorithm_family(key)
        if not allowed <= family:
            wrong = ", ".join(sorted(allowed - family))
            raise ValueError(
                f"algorithm(s) {wrong} cannot be used with this {_describe(key)}"
                f" (it fits {', '.join(sorted(family)) or 'nothing'})"
            )
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "kid", kid)
        object.__setattr__(self, "algorithms", allowed)

    def accepts(self, alg: str) -> bool:
        return alg in self.algorithms

    @classmethod
    def from_file(
        cls, path: str | Path, *, kid: str | None = None, algorithms: Iterable[str]
    ) -> StaticKey:
        """A PEM file, a JWK JSON file, or (anything else) the raw bytes of an HMAC secret."""
        return cls(_parse_text(Path(path).read_bytes()), kid=kid, algorithms=algorithms)

    @classmethod
    def from_env(cls, name: str, *, kid: str | None = None, algorithms: Iterable[str]) -> StaticKey:
        """Like :meth:`from_file`, from the environment variable ``name``."""
        value = os.environ.get(name)
        if not value:
            raise ValueError(f"environment variable {name} is not set or empty")
        return cls(_parse_text(value.encode()), kid=kid, algorithms=algorithms)


class KeySet:
    """Keys looked up by ``kid``; immutable once built (swap a new one to rotate)."""

    __slots__ = ("_anonymous", "_by_kid", "_keys")

    def __init__(self, keys: Iterable[StaticKey] = ()) -> None:
        self._keys = tuple(keys)
        by_kid: dict[str, tuple[StaticKey, ...]] = {}
        for key in self._keys:
            if key.kid is not None:
                by_kid[key.kid] = (*by_kid.get(key.kid, ()), key)
        self._by_kid = by_kid
        self._anonymous = tuple(key for key in self._keys if key.kid is None)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[StaticKey]:
        return iter(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def find(self, kid: str | None, alg: str) -> StaticKey:
        """The key for a token's ``kid`` whose allowlist holds ``alg``.

        A token without ``kid`` uses the one key (of all) that accepts its
        ``alg``; more than one is ambiguous. A ``kid`` no key carries may
        fall back to a key configured without ``kid`` on the same terms.
        """
        if kid is None:
            candidates = self._keys
        elif kid in self._by_kid:
            candidates = self._by_kid[kid]
        elif self._anonymous:
            candidates = self._anonymous
        else:
            raise InvalidSignature("unknown key id")
        fitting = [key for key in candidates if key.accepts(alg)]
        if len(fitting) == 1:
            return fitting[0]
        if not fitting:
            detail = "algorithm not allowed for this key" if candidates else "no verification key"
            raise InvalidSignature(detail)
        raise InvalidSignature("ambiguous key: set a kid")


def _load(material: KeyMaterial) -> VerifyingKey:
    if isinstance(material, str):
        material = material.encode()
    if isinstance(material, bytes):
        if b"-----BEGIN" in material:
            return _from_pem(material)
        if material.lstrip().startswith(b"{"):
            # A JWK's JSON used as an HMAC secret would make a public key a
            # shared secret: refuse, and ask for the parsed dict instead.
            raise ValueError("key material looks like a JWK: pass it as a dict")
        return material
    if isinstance(
        material,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        return material.public_key()
    if isinstance(
        material,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return material
    raise TypeError(f"unsupported key material: {type(material).__name__}")


def _from_pem(data: bytes) -> VerifyingKey:
    if b"CERTIFICATE-----" in data:
        public: object = x509.load_pem_x509_certificate(data).public_key()
    elif b"PRIVATE KEY-----" in data:
        public = load_pem_private_key(data, password=None).public_key()
    else:
        public = load_pem_public_key(data)
    if isinstance(
        public,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return public
    raise ValueError(f"unsupported PEM key type: {type(public).__name__}")


def _from_jwk(jwk: Mapping[str, Any]) -> tuple[VerifyingKey, str | None, str | None]:
    kty = jwk.get("kty")
    parser = _JWK_EC_PARSER.get(jwk.get("crv", "")) if kty == "EC" else _JWK_PARSER.get(kty or "")
    if parser is None:
        raise ValueError(f"unsupported JWK key type {kty!r}")
    try:
        parsed: Any = PyJWK(dict(jwk), algorithm=parser).key
    except (PyJWTError, ValueError, TypeError, KeyError) as exc:
        # PyJWT's messages embed the key; ours name only the problem.
        raise ValueError(f"invalid {kty} JWK") from exc
    key = _load(parsed)
    kid, alg = jwk.get("kid"), jwk.get("alg")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("JWK kid is not a string")
    if alg is not None and not isinstance(alg, str):
        raise ValueError("JWK alg is not a string")
    return key, kid, alg


def _parse_text(data: bytes) -> KeyMaterial:
    stripped = data.strip()
    if stripped.startswith(b"{"):
        parsed = json.loads(stripped)
        if not isinstance(parsed, dict):
            raise ValueError("a JWK must be a JSON object")
        return parsed
    if b"-----BEGIN" in stripped:
        return stripped
    # A secret from a file or variable: the exact bytes (a trailing newline
    # from `echo` or an editor is not part of it).
    return data.rstrip(b"\r\n")


def _describe(key: VerifyingKey) -> str:
    if isinstance(key, bytes):
        return f"{len(key)}-byte HMAC secret"
    if isinstance(key, rsa.RSAPublicKey):
        return f"{key.key_size}-bit RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC key on {key.curve.name}"
    return "EdDSA key"


class JWKSClient:
    """The keys published at a JWKS URL, fetched on demand and cached.

    * The set is fetched on first use and again when older than ``ttl_s``.
    * A ``kid`` the cached set lacks (key rotation) triggers a refetch, but
      at most one per ``min_refetch_interval_s``: a flood of tokens with
      invented ``kid`` values costs one request to the identity provider, not
      one per token. Concurrent misses wait for the same fetch.
    * A failed fetch (network, status, oversized or unusable document) keeps
      the last good set in service, logs a warning, and is retried after the
      interval. An empty or wholly unusable set never replaces a good one.
    * Entries with ``use`` other than ``sig``, ``key_ops`` without ``verify``,
      an unsupported ``kty`` (``oct`` included: a shared secret has no place
      in a public document), or an ``alg`` outside ``algorithms`` are skipped.
      An entry without ``alg`` accepts the configured algorithms its key type
      fits.

    Async callers use :meth:`find` / :meth:`refresh` (``httpx.AsyncClient``).
    Threaded (WSGI) callers use :meth:`find_sync` / :meth:`refresh_sync`
    (``httpx.Client``), which block the calling thread for at most
    ``timeout_s`` on the rare fetch; there is no background thread, so
    nothing runs between requests. Use one style per client.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Iterable[str],
        ttl_s: float = 300.0,
        min_refetch_interval_s: float = 30.0,
        timeout_s: float = 2.0,
        max_bytes: int = 512 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
        sync_transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme != "https" and not (
            parsed.scheme == "http" and parsed.host in _LOOPBACK_HOSTS
        ):
            raise ValueError("a JWKS URL must use https (http only on loopback)")
        self.url = url
        self.algorithms = frozenset(algorithms)
        if not self.algorithms <= SUPPORTED_ALGORITHMS:
            unknown = ", ".join(sorted(self.algorithms - SUPPORTED_ALGORITHMS))
            raise ValueError(f"unsupported algorithm(s): {unknown}")
        self.ttl_s = ttl_s
        self.min_refetch_interval_s = min_refetch_interval_s
        self._timeout = httpx.Timeout(timeout_s)
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._transport = transport
        self._sync_transport = sync_transport
        self._clock = clock
        self._keys = KeySet()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._generation = 0
        self._async_lock = asyncio.Lock()
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._thread_lock = threading.Lock()
        #: Fetch attempts and failures so far (for metrics).
        self.fetches = 0
        self.failures = 0

    @property
    def keys(self) -> KeySet:
        """The cached key set (possibly stale, possibly empty)."""
        return self._keys

    @property
    def stale(self) -> bool:
        now = self._clock()
        return self._fetched_at is None or now - self._fetched_at >= self.ttl_s

    async def find(self, kid: str | None, alg: str) -> StaticKey:
        """The key for ``kid``/``alg``, refetching the set when allowed and needed.

        A caller that needs a fetch while one is in flight waits for it (its
        ``kid`` may be the one being fetched) instead of starting another.
        """
        if self._wants_fetch(kid):
            seen = self._generation
            lock = self._loop_lock()
            if lock.locked() or self._may_fetch():
                async with lock:
                    if self._generation == seen and self._may_fetch():
                        await self._fetch_async()
        return self._keys.find(kid, alg)

    def find_sync(self, kid: str | None, alg: str) -> StaticKey:
        """:meth:`find` for threads; a needed fetch blocks this thread for <= ``timeout_s``."""
        if self._wants_fetch(kid):
            seen = self._generation
            if self._thread_lock.locked() or self._may_fetch():
                with self._thread_lock:
                    if self._generation == seen and self._may_fetch():
                        self._fetch_sync()
        return self._keys.find(kid, alg)

    async def refresh(self) -> bool:
        """Fetch now, ignoring the interval (e.g. at startup); True when a new set was installed."""
        async with self._loop_lock():
            return await self._fetch_async()

    def refresh_sync(self) -> bool:
        """:meth:`refresh` from a thread."""
        with self._thread_lock:
            return self._fetch_sync()

    def _loop_lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; a client outliving its
        # loop (test clients, reloaders) gets a fresh lock on the next one.
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:
            self._async_lock, self._lock_loop = asyncio.Lock(), loop
        return self._async_lock

    def _wants_fetch(self, kid: str | None) -> bool:
        expired = self._fetched_at is None or self._clock() - self._fetched_at >= self.ttl_s
        return expired or (kid is not None and kid not in self._keys)

    def _may_fetch(self) -> bool:
        last = self._attempted_at
        return last is None or self._clock() - last >= self.min_refetch_interval_s

    async def _fetch_async(self) -> bool:
        self._begin_fetch()
        try:
            return await self._download_async()
        finally:
            self._generation += 1

    def _fetch_sync(self) -> bool:
        self._begin_fetch()
        try:
            return self._download_sync()
        finally:
            self._generation += 1

    async def _download_async(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
                try:
                    async with client.stream("GET", self.url, headers=_ACCEPT) as response:
                        response.raise_for_status()
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            body += chunk
                            self._check_size(body)
                finally:
                    if self._transport is None:  # a caller's transport is the caller's to close
                        await client.aclose()
            return self._install(bytes(body))
        except (httpx.HTTPError, TimeoutError, ValueError) as exc:
            return self._failed(exc)

    def _download_sync(self) -> bool:
        try:
            client = httpx.Client(transport=self._sync_transport, timeout=self._timeout)
            try:
                with client.stream("GET", self.url, headers=_ACCEPT) as response:
                    response.raise_for_status()
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        self._check_size(body)
            finally:
                if self._sync_transport is None:
                    client.close()
            return self._install(bytes(body))
        except (httpx.HTTPError, ValueError) as exc:
            return self._failed(exc)

    def _begin_fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1

    def _check_size(self, body: bytearray) -> None:
        if len(body) > self._max_bytes:
            raise ValueError(f"JWKS document larger than {self._max_bytes} bytes")

    def _install(self, body: bytes) -> bool:
        keys = parse_jwks(body, self.algorithms)
        if not keys:
            raise ValueError("JWKS document has no usable signing keys")
        self._keys = keys
        self._fetched_at = self._clock()
        return True

    def _failed(self, exc: Exception) -> bool:
        self.failures += 1
        _log.warning(
            "JWKS fetch from %s failed (%s: %s); serving %d cached key(s), retrying after %.0fs",
            self.url,
            type(exc).__name__,
            exc,
            len(self._keys),
            self.min_refetch_interval_s,
        )
        return False


def parse_jwks(document: bytes, algorithms: frozenset[str]) -> KeySet:
    """The usable signing keys of a JWKS document (RFC 7517 §5); raises ValueError if not one."""
    try:
        data = json.loads(document)
    except (ValueError, RecursionError) as exc:
        raise ValueError("JWKS document is not JSON") from exc
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError('JWKS document has no "keys" list')
    keys = []
    for index, entry in enumerate(entries):
        try:
            key = _jwks_entry(entry, algorithms)
        except ValueError as exc:
            _log.info("JWKS entry %d skipped: %s", index, exc)
            continue
        if key is not None:
            keys.append(key)
    return KeySet(keys)


def _jwks_entry(entry: object, algorithms: frozenset[str]) -> StaticKey | None:
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    if entry.get("use", "sig") != "sig":
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    if entry.get("kty") not in ("RSA", "EC", "OKP"):
        raise ValueError(f"unsupported kty {str(entry.get('kty'))[:16]!r}")
    key, kid, alg = _from_jwk(entry)
    allowed = algorithm_family(key) & algorithms
    if alg is not None:
        if alg not in allowed:
            raise ValueError(f"alg {alg[:16]!r} is not allowed for this key")
        allowed = frozenset({alg})
    if not allowed:
        raise ValueError("no allowed algorithm fits this key")
    return StaticKey(key, kid=kid, algorithms=allowed)


_ACCEPT = {"accept": "application/jwk-set+json, application/json"}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_log = logging.getLogger("sloguard.auth.jwks")
