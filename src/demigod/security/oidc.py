"""JWT access tokens from an OpenID provider: discovery, a cached JWKS, verification.

PyJWT (not joserfc/authlib): it is small, has no framework ties, makes the caller name the
accepted algorithms on every decode (so the token header never chooses), and checks
exp/nbf/iat/iss/aud with a leeway. Its own PyJWKClient is not used: it neither throttles
refreshes on unknown `kid`s nor keeps the last good keys through an IdP outage, which
`JWKSCache` below does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from demigod.config import OIDCConfig

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"


def looks_like_jwt(token: str) -> bool:
    """The compact JWS shape (header.payload.signature); anything else is not a JWT at all."""
    return token.count(".") == 2


class TokenError(Exception):
    """A token that is refused; `reason` is the short code answered and counted."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class JWKSCache:
    """The provider's signing keys by `kid`, fetched through discovery and cached.

    Fetches happen when the set is older than `max_age` or a token names an unknown `kid`,
    and at most once per `min_refresh` seconds however many tokens ask (so a flood of
    made-up `kid`s costs the provider one request per interval). A failed fetch keeps the
    last good keys.
    """

    def __init__(
        self,
        issuer: str,
        http: httpx.AsyncClient,
        *,
        min_refresh: float,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._http = http
        self._min_refresh = min_refresh
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._jwks_uri: str | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # JWKS requests sent (tests and the metric read it)
        self.failures = 0

    @property
    def keys(self) -> dict[str, dict[str, Any]]:
        return dict(self._keys)

    async def key(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK for `kid` (None: the only key, if there is exactly one), or None."""
        if self._fetched_at is None or self._clock() - self._fetched_at > self._max_age:
            await self.refresh()
        found = self._lookup(kid)
        if found is None:
            await self.refresh()
            found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def refresh(self) -> bool:
        """Fetch the key set unless one was tried within `min_refresh`. True if fetched."""
        async with self._lock:
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_refresh:
                return False
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                self.failures += 1
                log.warning(
                    "JWKS fetch failed; keeping the last good keys",
                    extra={"issuer": self.issuer, "error": str(exc), "keys": len(self._keys)},
                )
                self._jwks_uri = None  # rediscover next time: the provider may have moved it
                return False
            self._keys, self._fetched_at = keys, now
            log.info("JWKS fetched", extra={"issuer": self.issuer, "kids": sorted(keys)})
            return True

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        if self._jwks_uri is None:
            reply = await self._http.get(self.issuer.rstrip("/") + DISCOVERY_PATH)
            reply.raise_for_status()
            discovery = reply.json()
            if discovery.get("issuer") != self.issuer:
                raise ValueError(
                    f"discovery names issuer {discovery.get('issuer')!r}, not {self.issuer!r}"
                )
            self._jwks_uri = str(discovery["jwks_uri"])
        self.fetches += 1
        reply = await self._http.get(self._jwks_uri)
        reply.raise_for_status()
        keys: dict[str, dict[str, Any]] = {}
        for jwk in reply.json()["keys"]:
            if jwk.get("use", "sig") == "sig" and isinstance(jwk.get("kid", ""), str):
                keys[jwk.get("kid", "")] = jwk
        return keys


class JWTVerifier:
    """Verifies access tokens against the pinned config; returns their claims."""

    def __init__(self, config: OIDCConfig, jwks: JWKSCache) -> None:
        if config.issuer is None:
            raise ValueError("JWTVerifier needs security.oidc.issuer")
        self.config = config
        self.issuer = config.issuer
        self.jwks = jwks
        # Parsed keys by (kid, alg), each with the JWK it came from: parsing a JWK costs
        # as much as verifying a signature, so it happens once per key, not per request.
        self._parsed: dict[tuple[str | None, str], tuple[dict[str, Any], PyJWK]] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims. Raises TokenError with the reason it is refused."""
        config = self.config
        if len(token.encode()) > config.max_token_bytes:
            raise TokenError("oversized", f"the token is over {config.max_token_bytes} bytes")
        if not looks_like_jwt(token):
            raise TokenError("malformed", "the token is not a compact JWS (header.payload.sig)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed", f"the token header is unreadable: {exc}") from exc
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise TokenError(
                "algorithm_not_allowed",
                f"alg {algorithm!r} is not accepted (accepted: {', '.join(config.algorithms)})",
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("malformed", "the token's kid is not a string")
        jwk = await self.jwks.key(kid)
        if jwk is None:
            raise TokenError("unknown_kid", f"no signing key {kid!r} at the issuer")
        if jwk.get("alg", algorithm) != algorithm:
            raise TokenError(
                "key_mismatch", f"key {kid!r} is for {jwk.get('alg')}, not {algorithm}"
            )
        key = self._parse(kid, algorithm, jwk)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=config.audience,
                issuer=self.issuer,
                leeway=config.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired", "the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("not_yet_valid", "the token is not valid yet (nbf/iat)") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("wrong_issuer", f"the token's issuer is not {self.issuer}") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("wrong_audience", f"the token is not for {config.audience}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("missing_claim", str(exc)) from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("bad_signature", "the token's signature does not verify") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenError("algorithm_not_allowed", str(exc)) from exc
        except jwt.DecodeError as exc:
            raise TokenError("malformed", f"the token is unreadable: {exc}") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError("invalid_token", f"the token is invalid: {exc}") from exc
        return claims

    def _parse(self, kid: str | None, algorithm: str, jwk: dict[str, Any]) -> PyJWK:
        cached = self._parsed.get((kid, algorithm))
        if cached is not None and cached[0] is jwk:
            return cached[1]
        try:
            key = PyJWK(jwk, algorithm=algorithm)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError("key_mismatch", f"key {kid!r} cannot verify {algorithm}") from exc
        self._parsed[(kid, algorithm)] = (jwk, key)
        return key


def claim(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def scopes_of(claims: dict[str, Any], path: str) -> frozenset[str]:
    """Scopes or roles: a space-separated string or a list of strings."""
    value = claim(claims, path)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def tenant_of(
    claims: dict[str, Any], path: str, scopes: frozenset[str] = frozenset(), prefix: str = ""
) -> str | None:
    """The tenant claim, else the one scope or role PREFIX+NAME, else the OAuth client
    (client_id, azp), else the subject."""
    named = sorted(s.removeprefix(prefix) for s in scopes if prefix and s.startswith(prefix))
    from_scope = named[0] if len(named) == 1 else None
    for candidate in (claim(claims, path), from_scope, claims.get("client_id"), claims.get("azp")):
        if isinstance(candidate, str) and candidate:
            return candidate
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject else None


def models_of(scopes: frozenset[str], prefix: str) -> frozenset[str] | None:
    """Models the scopes allow: PREFIX+NAME each; PREFIX+* or no model scope: None (all
    the tenant may use)."""
    named = frozenset(s.removeprefix(prefix) for s in scopes if s.startswith(prefix))
    if not named or "*" in named:
        return None
    return named
