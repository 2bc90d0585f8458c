"""The auth admission step: `Authorization: Bearer ...` -> a Principal, or 401 with a reason.

A bearer starting `dgk_` is an API key (demigod.security.api_keys); one shaped like a JWT
(header.payload.signature) is an access token from the configured OpenID provider
(demigod.security.oidc); anything else is an unknown API key. Every refusal is
answered 401 with an OpenAI error object whose `code` is the reason, and counted in
`demigod_auth_failures_total{reason}`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from demigod.api.admission import Admission
from demigod.api.errors import APIError
from demigod.api.principal import ANONYMOUS, Principal, intersect_models
from demigod.config import SecurityConfig
from demigod.security.api_keys import APIKeyError, APIKeyStore, looks_like_api_key
from demigod.security.oidc import (
    JWKSCache,
    JWTVerifier,
    TokenError,
    looks_like_jwt,
    models_of,
    scopes_of,
    tenant_of,
)
from demigod.security.tenants import tenant_models

log = logging.getLogger(__name__)

AUTH_HEADER = "x-demigod-auth"  # "off" on every response while authentication is disabled
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class AuthFailure(Exception):
    """Credentials refused; `reason` is the answered code and the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class JWKSCollector(Collector):
    """JWKS fetches and failed fetches, read from the cache at scrape time."""

    def __init__(self, jwks: JWKSCache) -> None:
        self._jwks = jwks

    def collect(self) -> Iterable[Metric]:
        fetches = CounterMetricFamily(
            "demigod_jwks_fetches", "JWKS requests sent to the OpenID provider"
        )
        fetches.add_metric([], self._jwks.fetches)
        failures = CounterMetricFamily(
            "demigod_jwks_fetch_failures",
            "JWKS fetches that failed (the last good keys were kept)",
        )
        failures.add_metric([], self._jwks.failures)
        yield from (fetches, failures)


def api_keys_path(security: SecurityConfig, data_dir: Path) -> Path:
    return security.api_keys_file or data_dir / "security" / "api-keys.json"


class Authenticator:
    """Turns a request's bearer credentials into a Principal."""

    def __init__(
        self,
        security: SecurityConfig,
        data_dir: Path,
        registry: CollectorRegistry,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.security = security
        self.enabled = security.auth == "required"
        self.keys = APIKeyStore(api_keys_path(security, data_dir))
        oidc = security.oidc
        self._http = http or httpx.AsyncClient(timeout=oidc.http_timeout_seconds)
        self.verifier: JWTVerifier | None = None
        if oidc.issuer is not None:
            jwks = JWKSCache(
                oidc.issuer,
                self._http,
                min_refresh=oidc.jwks_refresh_min_seconds,
                max_age=oidc.jwks_max_age_seconds,
            )
            self.verifier = JWTVerifier(oidc, jwks)
            registry.register(JWKSCollector(jwks))
        self.failures = Counter(
            "demigod_auth_failures",
            "Requests refused 401, by reason",
            ["reason"],
            registry=registry,
        )
        self.successes = Counter(
            "demigod_auth_successes",
            "Requests authenticated, by method (jwt, api_key, none)",
            ["method"],
            registry=registry,
        )

    async def start(self, host: str = "127.0.0.1") -> None:
        """Log the mode loudly when auth is off (an error when listening beyond loopback);
        fetch the JWKS early (failure is not fatal)."""
        if not self.enabled:
            log.log(
                logging.WARNING if host in LOOPBACK_HOSTS else logging.ERROR,
                "AUTHENTICATION IS OFF (security.auth=off): every request is served as tenant "
                "'anonymous'. Use this only for the local demo; see docs/security.md.",
                extra={"host": host},
            )
            return
        if self.verifier is not None:
            await self.verifier.jwks.refresh()
        elif not self.keys.path.exists():
            log.warning(
                "authentication is required but no OIDC issuer is configured and no API key "
                "exists yet: every request will be refused 401 (demigod keys create)"
            )

    async def close(self) -> None:
        await self._http.aclose()

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an Authorization header. Raises AuthFailure."""
        if not authorization:
            raise AuthFailure("missing_credentials", "send Authorization: Bearer <token or key>")
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise AuthFailure("malformed_header", "expected Authorization: Bearer <token or key>")
        if looks_like_api_key(credentials):
            return self._api_key_principal(credentials)
        if not looks_like_jwt(credentials):
            raise AuthFailure(
                "unknown_api_key",
                "not a known API key (demigod keys look like dgk_<id>_<secret>) nor a JWT",
            )
        if self.verifier is None:
            raise AuthFailure(
                "jwt_not_configured", "JWTs are not accepted here (no OIDC issuer); use an API key"
            )
        try:
            claims = await self.verifier.verify(credentials)
        except TokenError as exc:
            raise AuthFailure(exc.reason, str(exc)) from exc
        oidc = self.security.oidc
        scopes = scopes_of(claims, oidc.scope_claim)
        tenant = tenant_of(claims, oidc.tenant_claim, scopes, oidc.tenant_scope_prefix)
        if tenant is None:
            raise AuthFailure("missing_claim", f"no tenant claim ({oidc.tenant_claim}) in token")
        subject = claims.get("sub") or claims.get("client_id") or tenant
        return Principal(
            subject=str(subject),
            tenant=tenant,
            auth_method="jwt",
            models=intersect_models(
                models_of(scopes, oidc.model_scope_prefix), tenant_models(self.security, tenant)
            ),
            scopes=scopes,
        )

    def _api_key_principal(self, key: str) -> Principal:
        try:
            record = self.keys.verify(key)
        except APIKeyError as exc:
            raise AuthFailure(exc.reason, str(exc)) from exc
        return Principal(
            subject=f"key:{record.id}",
            tenant=record.tenant,
            auth_method="api_key",
            models=intersect_models(
                None if record.models is None else frozenset(record.models),
                tenant_models(self.security, record.tenant),
            ),
        )

    async def __call__(self, admission: Admission) -> None:
        """The admission step: sets `admission.principal` and `request.state.principal`."""
        request = admission.request
        if not self.enabled:
            principal = ANONYMOUS
            admission.response_headers[AUTH_HEADER] = "off"
        else:
            try:
                principal = await self.authenticate(request.headers.get("authorization"))
            except AuthFailure as exc:
                self.failures.labels(exc.reason).inc()
                admission.verdicts["auth"] = f"refused:{exc.reason}"
                raise APIError(
                    401,
                    f"authentication failed ({exc.reason}): {exc}",
                    type="authentication_error",
                    code=exc.reason,
                    headers={
                        "WWW-Authenticate": f'Bearer error="invalid_token", '
                        f'error_description="{exc.reason}"'
                    },
                ) from exc
        self.successes.labels(principal.auth_method).inc()
        admission.principal = principal
        admission.verdicts["auth"] = principal.auth_method
        request.state.principal = principal


def require_model(admission: Admission, model: str) -> None:
    """403 unless the principal may use `model` (checked on the name asked for and on the
    model `auto` resolved to)."""
    principal = admission.principal
    if not principal.may_use(model):
        raise APIError(
            403,
            f"tenant {principal.tenant!r} may not use model {model!r}",
            type="permission_error",
            param="model",
            code="model_not_allowed",
        )
