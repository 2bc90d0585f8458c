"""JWT access tokens from a real OpenID provider (npm oidc-provider): good tokens pass with
their tenant and scopes, every kind of bad token is a 401 with its reason (counted), keys
rotate during traffic, kid floods cost the provider one fetch per interval, and an
outage keeps the last good keys."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from demigod.security.oidc import JWKSCache
from tests.conftest import Server
from tests.security.conftest import CLIENTS, JWKS_REFRESH_MIN_SECONDS
from tests.security.oidc_provider import AUDIENCE, OIDCProvider, rsa_private_jwk

ANALYTICS, RESTRICTED = CLIENTS
PROMPT = {"model": "tiny", "prompt": "hello", "max_tokens": 1}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key(oidc: OIDCProvider) -> Any:
    """The private key the provider signs with now (the tests forge tokens with it)."""
    return RSAAlgorithm.from_jwk(json.dumps(oidc.keys[0]))


def claims(oidc: OIDCProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": oidc.issuer,
        "aud": AUDIENCE,
        "sub": "forger",
        "client_id": "analytics",
        "tenant": "analytics",
        "iat": now,
        "exp": now + 300,
        "scope": "model:tiny",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def forge(oidc: OIDCProvider, kid: str | None = None, **changes: Any) -> str:
    """A token signed with the provider's current key, claims changed as asked."""
    kid = kid or oidc.keys[0]["kid"]
    return jwt.encode(claims(oidc, **changes), signing_key(oidc), "RS256", headers={"kid": kid})


def hs256_with_public_key(oidc: OIDCProvider) -> str:
    """The classic key-confusion attack: HMAC keyed with the provider's public key."""
    public_pem = (
        signing_key(oidc)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps(claims(oidc)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def alg_none(oidc: OIDCProvider) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
    return f"{header}.{b64(json.dumps(claims(oidc)).encode())}."


def tampered_payload(oidc: OIDCProvider) -> str:
    header, _, signature = oidc.token(ANALYTICS).split(".")
    payload = b64(json.dumps(claims(oidc, tenant="someone-richer")).encode())
    return f"{header}.{payload}.{signature}"


def tampered_signature(oidc: OIDCProvider) -> str:
    header, payload, signature = oidc.token(ANALYTICS).split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def unknown_kid(oidc: OIDCProvider) -> str:
    _, other = rsa_private_jwk("ghost")
    return jwt.encode(claims(oidc), other, "RS256", headers={"kid": "ghost"})


BAD_TOKENS: list[tuple[str, Any, str]] = [
    (
        "expired",
        lambda o: forge(o, iat=int(time.time()) - 900, exp=int(time.time()) - 60),
        "expired",
    ),
    ("not yet valid", lambda o: forge(o, nbf=int(time.time()) + 600), "not_yet_valid"),
    ("issued in the future", lambda o: forge(o, iat=int(time.time()) + 600), "not_yet_valid"),
    ("wrong issuer", lambda o: forge(o, iss="https://evil.example.com"), "wrong_issuer"),
    ("wrong audience", lambda o: forge(o, aud="another-service"), "wrong_audience"),
    ("no expiry", lambda o: forge(o, exp=None), "missing_claim"),
    ("alg none", alg_none, "algorithm_not_allowed"),
    ("HS256 keyed with the public key", hs256_with_public_key, "algorithm_not_allowed"),
    ("unknown kid", unknown_kid, "unknown_kid"),
    ("tampered payload", tampered_payload, "bad_signature"),
    ("tampered signature", tampered_signature, "bad_signature"),
    ("oversized", lambda o: forge(o, padding="x" * 10_000), "oversized"),
    ("neither a key nor a JWT", lambda o: "sk-garbage", "unknown_api_key"),
    ("three garbage parts", lambda o: "aaa.bbb.ccc", "malformed"),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def failures(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    return {
        match[1]: float(match[2])
        for match in re.finditer(r'demigod_auth_failures_total\{reason="([^"]+)"\} (\S+)', text)
    }


def metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def test_provider_token_is_admitted_with_its_tenant_and_scopes(
    secured: Server, oidc: OIDCProvider
) -> None:
    token = oidc.token(ANALYTICS, scope="model:tiny")
    reply = httpx.post(
        f"{secured.url}/v1/completions", json=PROMPT, headers=bearer(token), timeout=60
    )
    assert reply.status_code == 200, reply.text
    metrics = httpx.get(f"{secured.url}/metrics", timeout=30).text
    assert 'demigod_requests_total{model="tiny",status="200",tenant="analytics"' in metrics
    # a token whose scopes name another model may not use tiny, and does not see it
    narrow = forge(oidc, scope="model:elsewhere")
    refused = httpx.post(
        f"{secured.url}/v1/completions", json=PROMPT, headers=bearer(narrow), timeout=30
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    listed = httpx.get(f"{secured.url}/v1/models", headers=bearer(narrow), timeout=30)
    assert listed.json()["data"] == []
    # the tenant's own model list applies to JWTs too
    other = oidc.token(RESTRICTED)
    assert (
        httpx.post(
            f"{secured.url}/v1/completions", json=PROMPT, headers=bearer(other), timeout=30
        ).status_code
        == 403
    )


def test_bad_tokens_are_401_with_a_reason_and_counted(secured: Server, oidc: OIDCProvider) -> None:
    before = failures(secured)
    expected: dict[str, int] = {}
    for name, make, reason in BAD_TOKENS:
        reply = httpx.get(f"{secured.url}/v1/models", headers=bearer(make(oidc)), timeout=30)
        assert reply.status_code == 401, (name, reply.status_code, reply.text)
        error = reply.json()["error"]
        assert error["code"] == reason, (name, error)
        assert error["type"] == "authentication_error" and reason in error["message"]
        assert reply.headers["www-authenticate"].startswith("Bearer")
        expected[reason] = expected.get(reason, 0) + 1
    after = failures(secured)
    for reason, count in expected.items():
        assert after.get(reason, 0) - before.get(reason, 0) == count, reason
    # the good token still works after all that
    good = httpx.get(f"{secured.url}/v1/models", headers=bearer(oidc.token(ANALYTICS)), timeout=30)
    assert good.status_code == 200 and [m["id"] for m in good.json()["data"]] == ["tiny"]


def test_kid_flood_costs_one_jwks_fetch_per_interval(secured: Server, oidc: OIDCProvider) -> None:
    time.sleep(JWKS_REFRESH_MIN_SECONDS)  # let an earlier test's refresh age out
    fetches = metric(secured, "demigod_jwks_fetches_total")
    started = time.monotonic()
    flood = [forge(oidc, kid=f"made-up-{uuid.uuid4().hex}") for _ in range(30)]
    results: list[int] = []

    def send(token: str) -> None:
        results.append(
            httpx.get(f"{secured.url}/v1/models", headers=bearer(token), timeout=30).status_code
        )

    threads = [threading.Thread(target=send, args=(token,)) for token in flood]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert results == [401] * len(flood)
    sent = metric(secured, "demigod_jwks_fetches_total") - fetches
    assert 1 <= sent <= 1 + elapsed // JWKS_REFRESH_MIN_SECONDS, (sent, elapsed)


def test_key_rotation_and_outage_during_traffic(secured: Server, oidc: OIDCProvider) -> None:
    """The provider restarts twice (an outage each time): first publishing a new signing
    key beside the old, then the new one alone. A client keeps sending, with a fresh token
    whenever the provider answers; every request succeeds."""
    statuses: list[int] = []
    kids: set[str] = set()
    stop = threading.Event()
    token = oidc.token(ANALYTICS)

    def traffic() -> None:
        nonlocal token
        while not stop.is_set():
            # while the provider restarts, keep using the last token
            with contextlib.suppress(httpx.HTTPError, AssertionError):
                token = oidc.token(ANALYTICS)
            kids.add(jwt.get_unverified_header(token)["kid"])
            reply = httpx.get(f"{secured.url}/v1/models", headers=bearer(token), timeout=30)
            statuses.append(reply.status_code)
            if reply.status_code != 200:
                statuses.append(-1)
                stop.set()
                raise AssertionError(reply.text)
            time.sleep(0.05)

    client = threading.Thread(target=traffic)
    client.start()
    try:
        time.sleep(1)
        old = oidc.keys[0]
        new, _ = rsa_private_jwk("k2")
        oidc.stop()  # outage: the gateway serves from its cached keys
        during = len(statuses)
        time.sleep(1.5)
        assert len(statuses) > during  # traffic went on while the provider was down
        oidc.restart([new, old])  # new key signs; old tokens still verify
        time.sleep(JWKS_REFRESH_MIN_SECONDS + 1)
        oidc.restart([new])  # old key retired
        time.sleep(1)
    finally:
        stop.set()
        client.join()
    assert statuses and set(statuses) == {200}, statuses[-5:]
    assert kids == {"k1", "k2"}
    assert oidc.keys[0]["kid"] == "k2"


def test_jwks_cache_keeps_keys_through_outage_and_throttles(oidc: OIDCProvider) -> None:
    asyncio.run(jwks_cache_scenario(oidc))


async def jwks_cache_scenario(oidc: OIDCProvider) -> None:
    """The cache alone, against the real provider, with a clock the test moves."""
    now = [1000.0]
    async with httpx.AsyncClient(timeout=5) as http:
        cache = JWKSCache(oidc.issuer, http, min_refresh=10, max_age=60, clock=lambda: now[0])
        kid = oidc.keys[0]["kid"]
        assert (await cache.key(kid)) is not None and cache.fetches == 1
        assert await cache.key("nope") is None and cache.fetches == 1  # throttled
        now[0] += 11
        assert await cache.key("nope") is None and cache.fetches == 2  # one more, allowed
        assert await cache.key("nope") is None and cache.fetches == 2
        oidc.stop()
        try:
            now[0] += 120  # stale: a refresh is tried, fails, the old keys stay
            assert (await cache.key(kid)) is not None
            assert cache.failures == 1
        finally:
            oidc.start()
        now[0] += 11  # back up: the failed attempt counted as a fetch sent
        assert (await cache.key(kid)) is not None and cache.fetches == 4


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_config_refuses_symmetric_and_none_algorithms(algorithm: str) -> None:
    from pydantic import ValidationError

    from demigod.config import OIDCConfig

    with pytest.raises(ValidationError, match="unsupported JWT algorithms"):
        OIDCConfig(issuer="https://idp", algorithms=[algorithm])
