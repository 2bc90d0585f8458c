"""Fixtures of the identity tests: a real OpenID provider and a gateway that requires auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.security.oidc_provider import Client, OIDCProvider, rsa_private_jwk

JWKS_REFRESH_MIN_SECONDS = 2.0
CLIENTS = [
    Client("analytics", "analytics-secret-0123456789abcdef", tenant="analytics"),
    Client("restricted", "restricted-secret-0123456789abcdef", tenant="other"),
]


@pytest.fixture(scope="session")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    """oidc-provider on a free port, signing with key `k1` (its private key is in keys[0])."""
    jwk, _ = rsa_private_jwk("k1")
    provider = OIDCProvider(tmp_path_factory.mktemp("oidc"), CLIENTS, [jwk])
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def secured(
    tiny_model: Path, oidc: OIDCProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A gateway with auth required: JWTs from `oidc`, API keys from its data dir, and
    tenants `acme` (3 requests/min), `other` (no served model), `solo` (one request at a
    time) and `frugal` (5 tokens/min)."""
    config = f"""
security:
  auth: required
  oidc:
    issuer: {oidc.issuer}
    jwks_refresh_min_seconds: {JWKS_REFRESH_MIN_SECONDS}
  tenants:
    acme: {{requests_per_minute: 3}}
    other: {{models: [nothing-served]}}
    solo: {{concurrent_requests: 1}}
    frugal: {{tokens_per_minute: 5}}
"""
    running = start_server(
        [f"tiny={tiny_model}"],
        tmp_path_factory.mktemp("secured"),
        env={"DEMIGOD_SECURITY__AUTH": "required"},
        config=config,
    )
    yield running
    stop_server(running)
