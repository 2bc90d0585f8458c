"""What authentication costs per request: the gateway's credential check against the floor.

Run: .venv/bin/python bench/auth_verify.py [--n 2000]

Measured in one process, on the code the gateway runs (`Authenticator.authenticate`):
- jwt RS256 / ES256: a provider-style access token verified with cached JWKS keys
  (discovery and JWKS answered once by an in-process httpx transport; no network);
- api key: lookup, sha256 and constant-time compare against a 1000-key store file;
- reference: bare `jwt.decode` with a ready key object (PyJWT's own cost, the floor).
Prints a table (microseconds per check) and one JSON line. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from prometheus_client import CollectorRegistry

from demigod.config import OIDCConfig, SecurityConfig
from demigod.security.api_keys import APIKeyStore
from demigod.security.authenticate import Authenticator

ISSUER = "https://idp.bench.invalid"


def provider(jwks: dict[str, Any]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
        return httpx.Response(200, json=jwks)

    return httpx.MockTransport(answer)


async def timed(check: Callable[[], Awaitable[object]], n: int) -> list[float]:
    await check()  # warm: JWKS fetched, store read
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await check()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def main(n: int) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {
        "keys": [
            {**json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "r", "alg": "RS256"},
            {**json.loads(ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "e", "alg": "ES256"},
        ]
    }
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": "demigod", "sub": "svc", "client_id": "svc", "tenant": "acme",
        "iat": now, "exp": now + 3600, "scope": "model:demigod-chat model:demigod-code",
    }  # fmt: skip
    rs256 = jwt.encode(claims, rsa_key, "RS256", headers={"kid": "r", "typ": "at+jwt"})
    es256 = jwt.encode(claims, ec_key, "ES256", headers={"kid": "e", "typ": "at+jwt"})
    with tempfile.TemporaryDirectory() as tmp:
        store = APIKeyStore(Path(tmp) / "security" / "api-keys.json")
        for i in range(999):
            store.create(name=f"k{i}", tenant="acme")
        api_key, _ = store.create(name="bench", tenant="acme")
        security = SecurityConfig(oidc=OIDCConfig(issuer=ISSUER))
        authenticator = Authenticator(
            security,
            Path(tmp),
            CollectorRegistry(),
            http=httpx.AsyncClient(transport=provider(jwks)),
        )
        public = rsa_key.public_key()

        async def bare() -> object:
            return jwt.decode(rs256, public, ["RS256"], audience="demigod", issuer=ISSUER)

        cases = {
            "jwt RS256": lambda: authenticator.authenticate(f"Bearer {rs256}"),
            "jwt ES256": lambda: authenticator.authenticate(f"Bearer {es256}"),
            "api key (1000 stored)": lambda: authenticator.authenticate(f"Bearer {api_key}"),
            "reference: bare jwt.decode RS256": bare,
        }
        rows = []
        for name, check in cases.items():
            samples = sorted(await timed(check, n))
            rows.append(
                {
                    "check": name,
                    "p50_us": round(statistics.median(samples), 1),
                    "p95_us": round(samples[int(0.95 * len(samples)) - 1], 1),
                }
            )
        await authenticator.close()
    print(f"{'check':<36} {'p50 µs':>9} {'p95 µs':>9}")
    for row in rows:
        print(f"{row['check']:<36} {row['p50_us']:>9} {row['p95_us']:>9}")
    print(
        json.dumps(
            {
                "bench": "auth_verify",
                "n": n,
                "machine": platform.machine(),
                "python": platform.python_version(),
                "date": datetime.now(UTC).date().isoformat(),
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="checks per case")
    asyncio.run(main(parser.parse_args().n))
