"""Atheris target: the bearer-token parsers raise nothing but sloguard's AuthError.

Three shapes of input, chosen by the first byte, so the fuzzer gets past each
layer instead of dying at the first regex:

0. raw text, as an ``Authorization`` header, a cookie and a query string,
   through :func:`extract_token`, :func:`split_token` and the verifier;
1. fuzzed header/payload/signature bytes, base64url-encoded, so JSON header
   parsing and the header checks (``alg``, ``kid``, ``crit``) are reached;
2. a fuzzed header and payload *validly signed* with the verifier's HS256
   secret, so PyJWT's payload decoding sees arbitrary authentic bytes;
3. a JSON header and claims built from fuzzed choices (``alg`` spellings,
   ``kid`` values, ``crit``; ``exp``/``nbf``/``iat`` as huge, negative,
   fractional, non-finite or non-numeric values; ``aud`` as string, list or
   junk), validly signed, so the claim and time checks see every shape.

Run: ``python fuzz/fuzz_tokens.py [corpus_dir] -max_total_time=60``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["sloguard.auth"]):
    from sloguard.auth._errors import AuthError
    from sloguard.auth._keys import KeySet, StaticKey
    from sloguard.auth._tokens import extract_token, split_token
    from sloguard.auth._verify import TokenVerifier

SECRET = b"fuzzing-secret-".ljust(32, b"x")
VERIFIER = TokenVerifier(
    KeySet([StaticKey(SECRET, kid="k", algorithms={"HS256"})]),
    issuers=["iss"],
    audiences=["aud"],
    cache_size=0,  # a fuzzer would otherwise fill the cache with every valid token
    clock=lambda: 1_700_000_000.0,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_text(fdp: atheris.FuzzedDataProvider) -> None:
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    for headers, query in (
        ({"authorization": text}, ""),
        ({"cookie": text}, ""),
        ({}, text),
    ):
        try:
            token = extract_token(headers, query, cookie_name="session", allow_query=True)
        except AuthError:
            continue
        try:
            split_token(token)
            VERIFIER.verify_sync(token)
        except AuthError:
            pass
    with contextlib.suppress(AuthError):
        VERIFIER.verify_sync(text)


def encoded_segments(fdp: atheris.FuzzedDataProvider, *, sign: bool) -> None:
    header = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
    payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))
    signing_input = f"{b64(header)}.{b64(payload)}"
    if sign:
        signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    else:
        signature = fdp.ConsumeBytes(fdp.remaining_bytes())
    token = f"{signing_input}.{b64(signature)}"
    with contextlib.suppress(AuthError):
        VERIFIER.verify_sync(token)


ALGS = ["HS256", "HS384", "RS256", "none", "NONE", "nOnE", "", "ES256", "EdDSA"]


def fuzzed_value(fdp: atheris.FuzzedDataProvider) -> Any:
    kind = fdp.ConsumeIntInRange(0, 8)
    if kind == 0:
        return fdp.ConsumeInt(8)
    if kind == 1:
        return 1_700_000_000 + fdp.ConsumeIntInRange(-100_000, 100_000)
    if kind == 2:
        return fdp.ConsumeRegularFloat()
    if kind == 3:
        return fdp.PickValueInList([float("nan"), float("inf"), -float("inf"), 10**400, True, None])
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(12)
    if kind == 5:
        return [fdp.ConsumeUnicodeNoSurrogates(6) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 6:
        return {"nested": fdp.ConsumeUnicodeNoSurrogates(6)}
    return fdp.PickValueInList(["iss", "aud", "k"])


def structured_claims(fdp: atheris.FuzzedDataProvider) -> None:
    header: dict[str, Any] = {"alg": fdp.PickValueInList(ALGS)}
    for name in ("kid", "typ", "crit", "jku", "b64"):
        if fdp.ConsumeBool():
            header[name] = fuzzed_value(fdp)
    claims = {
        name: fuzzed_value(fdp)
        for name in ("sub", "iss", "aud", "exp", "nbf", "iat", "jti")
        if fdp.ConsumeBool()
    }
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    with contextlib.suppress(AuthError):
        VERIFIER.verify_sync(f"{signing_input}.{b64(signature)}")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        raw_text(fdp)
    elif mode == 3:
        structured_claims(fdp)
    else:
        encoded_segments(fdp, sign=mode == 2)


def main(argv: list[str]) -> None:
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
