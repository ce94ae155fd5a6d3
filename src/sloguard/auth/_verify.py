"""Token verification: from a bearer string to trusted claims, once per token.

The order of the checks is the security argument (RFC 8725):

1. size, then the strict split (:func:`split_token`): nothing larger than
   ``max_token_bytes`` is parsed, and only the header is decoded;
2. the header: ``crit`` is refused (we implement no extensions), ``alg:
   none`` in any spelling is refused, ``kid`` must be a string and is only
   ever a dict key; ``jku``, ``x5u``, ``jwk`` and ``x5c`` are never read;
3. the key is chosen by ``kid`` from *our* keys, and the token's ``alg``
   must be in that key's allowlist (which construction already confined to
   the key's type);
4. PyJWT checks the signature with that key and ``algorithms=[alg]``, and
   the issuer, audience and required claims;
5. ``exp``/``nbf``/``iat`` are checked here against the injected clock (PyJWT
   reads the wall clock itself), with ``leeway_s`` and ``max_future_iat_s``;
   a NumericDate that is not a finite number is refused.

PyJWT's exceptions become ours at step 4 (``raise ... from exc``). A verified
token is remembered in :class:`VerifiedTokenCache` under its SHA-256 until
``min(exp + leeway, verified_at + cache_ttl_s)``; a hit checks the validity
window against the clock again and costs about a microsecond.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from sloguard.auth._errors import (
    AuthError,
    ExpiredToken,
    InvalidClaims,
    InvalidSignature,
    MalformedToken,
)
from sloguard.auth._keys import JWKSClient, KeySet, StaticKey
from sloguard.auth._tokens import DEFAULT_MAX_TOKEN_BYTES, split_token

__all__ = ["KeySource", "TokenVerifier", "VerifiedTokenCache", "check_time_claims"]

KeySource = KeySet | JWKSClient


class VerifiedTokenCache:
    """A bounded LRU of verified claims keyed by the token's SHA-256 digest.

    The raw token is never stored. Thread-safe: writers take a lock, reads
    rely on single OrderedDict operations being atomic. ``hits``/``misses``
    are approximate under threads (they feed metrics, not decisions).
    """

    __slots__ = ("_entries", "_lock", "hits", "maxsize", "misses")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[bytes, tuple[float, float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> dict[str, Any] | None:
        # Lock-free read: each OrderedDict call is atomic under the GIL, and a
        # concurrent eviction between them only turns this hit into a miss.
        entry = self._entries.get(digest)
        if entry is None:
            self.misses += 1
            return None
        not_before, valid_until, claims = entry
        if not not_before <= now < valid_until:
            self._entries.pop(digest, None)
            self.misses += 1
            return None
        try:
            self._entries.move_to_end(digest)
        except KeyError:
            return None
        self.hits += 1
        return claims

    def put(
        self, digest: bytes, claims: dict[str, Any], *, not_before: float, valid_until: float
    ) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._entries[digest] = (not_before, valid_until, claims)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class TokenVerifier:
    """Verifies JWTs against configured keys; see the module docstring for the checks.

    Empty ``issuers`` skips the issuer check. Empty ``audiences`` accepts only
    tokens without ``aud`` (RFC 7519 §4.1.3: a token addressed to someone must
    be refused by everyone else).
    """

    def __init__(
        self,
        keys: KeySource | Sequence[KeySource],
        *,
        issuers: Collection[str],
        audiences: Collection[str],
        leeway_s: float = 30.0,
        max_future_iat_s: float = 300.0,
        required_claims: Iterable[str] = ("exp",),
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        cache_size: int = 10_000,
        cache_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sources: tuple[KeySource, ...] = (
            (keys,) if isinstance(keys, KeySet | JWKSClient) else tuple(keys)
        )
        if not self._sources:
            raise ValueError("a TokenVerifier needs at least one key source")
        self._issuers = frozenset(issuers) or None
        self._audiences = tuple(audiences) or None
        self.leeway_s = leeway_s
        self.max_future_iat_s = max_future_iat_s
        self.max_token_bytes = max_token_bytes
        self.cache_ttl_s = cache_ttl_s
        self.cache = VerifiedTokenCache(cache_size)
        self._clock = clock
        self._jwt = jwt.PyJWT()
        self._options: dict[str, Any] = {
            "verify_signature": True,
            "verify_exp": False,  # time claims: check_time_claims, with our clock
            "verify_nbf": False,
            "verify_iat": False,
            "verify_iss": True,
            "verify_aud": True,
            "require": list(required_claims),
        }

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or an :class:`AuthError` subclass. Fetches JWKS if needed."""
        digest = self._digest(token)
        cached = self.cache.get(digest, self._clock())
        if cached is not None:
            return dict(cached)
        kid, alg = self._read_header(token)
        key = await self._find_key_async(kid, alg)
        return self._verify_with(token, digest, key, alg)

    def verify_sync(self, token: str) -> dict[str, Any]:
        """:meth:`verify` for threads; a needed JWKS fetch blocks this thread."""
        digest = self._digest(token)
        cached = self.cache.get(digest, self._clock())
        if cached is not None:
            return dict(cached)
        kid, alg = self._read_header(token)
        key = self._find_key_sync(kid, alg)
        return self._verify_with(token, digest, key, alg)

    def _digest(self, token: str) -> bytes:
        if len(token) > self.max_token_bytes:
            raise MalformedToken("token too large")
        try:
            return hashlib.sha256(token.encode("ascii")).digest()
        except UnicodeEncodeError as exc:
            raise MalformedToken("token is not ASCII") from exc

    def _read_header(self, token: str) -> tuple[str | None, str]:
        header, _, _ = split_token(token)
        if "crit" in header:
            raise MalformedToken("token uses critical header extensions")
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise MalformedToken("token header has no algorithm")
        if alg.lower() == "none":
            raise InvalidSignature("unsigned tokens are not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise MalformedToken("token key id is not a string")
        return kid, alg

    async def _find_key_async(self, kid: str | None, alg: str) -> StaticKey:
        failure: AuthError | None = None
        for source in self._sources:
            try:
                if isinstance(source, JWKSClient):
                    return await source.find(kid, alg)
                return source.find(kid, alg)
            except InvalidSignature as exc:
                failure = exc
        assert failure is not None
        raise failure

    def _find_key_sync(self, kid: str | None, alg: str) -> StaticKey:
        failure: AuthError | None = None
        for source in self._sources:
            try:
                return (
                    source.find_sync(kid, alg)
                    if isinstance(source, JWKSClient)
                    else source.find(kid, alg)
                )
            except InvalidSignature as exc:
                failure = exc
        assert failure is not None
        raise failure

    def _verify_with(self, token: str, digest: bytes, key: StaticKey, alg: str) -> dict[str, Any]:
        if not key.accepts(alg):  # KeySet.find guarantees it; a second lock on the door
            raise InvalidSignature("algorithm not allowed for this key")
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                options=self._options,  # type: ignore[arg-type]
                audience=self._audiences,
                issuer=self._issuers,
            )
        except jwt_errors.PyJWTError as exc:
            raise _translate(exc) from exc
        now = self._clock()
        check_time_claims(
            claims, now=now, leeway_s=self.leeway_s, max_future_iat_s=self.max_future_iat_s
        )
        exp, nbf = _numeric_date(claims, "exp"), _numeric_date(claims, "nbf")
        valid_until = now + self.cache_ttl_s
        if exp is not None:
            valid_until = min(valid_until, exp + self.leeway_s)
        not_before = -math.inf if nbf is None else nbf - self.leeway_s
        self.cache.put(digest, claims, not_before=not_before, valid_until=valid_until)
        return dict(claims)


def check_time_claims(
    claims: Mapping[str, Any], *, now: float, leeway_s: float, max_future_iat_s: float
) -> None:
    """Raise :class:`ExpiredToken` unless ``now`` is inside the token's validity window."""
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is not None and exp <= now - leeway_s:
        raise ExpiredToken("token has expired")
    if nbf is not None and nbf > now + leeway_s:
        raise ExpiredToken("token is not valid yet")
    if iat is not None and iat > now + max_future_iat_s:
        raise ExpiredToken("token was issued in the future")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int, and json.loads accepts NaN/Infinity: an exp of NaN
    # would compare false with everything and never expire.
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise InvalidClaims(f"claim {name!r} is not a NumericDate")


def _translate(exc: jwt_errors.PyJWTError) -> AuthError:
    # InvalidSignatureError is a DecodeError subclass: order matters.
    if isinstance(exc, jwt_errors.ExpiredSignatureError | jwt_errors.ImmatureSignatureError):
        return ExpiredToken("token is outside its validity period")
    if isinstance(
        exc,
        jwt_errors.InvalidSignatureError
        | jwt_errors.InvalidAlgorithmError
        | jwt_errors.InvalidKeyError,
    ):
        return InvalidSignature("signature verification failed")
    if isinstance(exc, jwt_errors.MissingRequiredClaimError):
        return InvalidClaims(f"token lacks the required claim {exc.claim!r}")
    if isinstance(exc, jwt_errors.InvalidIssuerError):
        return InvalidClaims("token issuer is not accepted")
    if isinstance(exc, jwt_errors.InvalidAudienceError):
        return InvalidClaims("token audience is not accepted")
    if isinstance(
        exc,
        jwt_errors.InvalidIssuedAtError
        | jwt_errors.InvalidSubjectError
        | jwt_errors.InvalidJTIError,
    ):
        return InvalidClaims("token has an invalid registered claim")
    if isinstance(exc, jwt_errors.DecodeError):
        return MalformedToken("token could not be decoded")
    return InvalidSignature("token rejected")
