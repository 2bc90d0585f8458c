"""A Caddyfile that puts Caddy in front of the gateway: TLS, a request body limit,
security headers, and a streaming-friendly reverse proxy.

Per-IP rate limiting is not in it: Debian's Caddy 2.6.2 ships no rate-limit handler
(`caddy list-modules` lists no `http.handlers.rate_limit`); the gateway's tenant quotas
(`security.tenants`, docs/security.md) limit traffic instead. A Caddy built with the
third-party `caddy-ratelimit` module can add a `rate_limit` block to the site.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demigod.protocol import ErrorBody, ErrorResponse

CADDYFILE = "Caddyfile"
LOCAL_HOST = "localhost"
# Long generations stream for minutes on a CPU: the proxy must not cut them off.
UPSTREAM_TIMEOUT = "15m"

SECURITY_HEADERS: dict[str, str] = {
    "Strict-Transport-Security": '"max-age=31536000; includeSubDomains"',
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "\"default-src 'none'; frame-ancestors 'none'\"",
    "Permissions-Policy": '"camera=(), microphone=(), geolocation=()"',
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class CaddySite:
    """What the Caddyfile serves and where it proxies to.

    `domain` None: https://localhost:`https_port` with a certificate from Caddy's own
    local CA (`tls internal`). A real domain: certificates from Let's Encrypt / ZeroSSL
    over ACME (the host must be reachable on ports 80 and 443), `email` for the account.
    """

    gateway: str  # HOST:PORT of `demigod serve`
    domain: str | None = None
    email: str | None = None
    https_port: int = 8443
    max_body_bytes: int = 10 * 1024 * 1024

    @property
    def address(self) -> str:
        if self.domain:
            return self.domain
        return f"https://{LOCAL_HOST}:{self.https_port}"


def too_large_error(limit: int) -> str:
    """The OpenAI-style error body Caddy answers for an oversized request."""
    body = ErrorResponse(
        error=ErrorBody(
            message=f"request body larger than {limit} bytes",
            type="invalid_request_error",
            code="request_too_large",
        )
    )
    return body.model_dump_json()


def render_caddyfile(site: CaddySite) -> str:
    """The Caddyfile text for `site`."""
    header_lines = "".join(f"\t\t{name} {value}\n" for name, value in SECURITY_HEADERS.items())
    if site.domain:
        globals_block = f"\temail {site.email}\n" if site.email else ""
        tls_line = ""
        tls_comment = "# TLS: automatic certificates over ACME for the domain above.\n"
    else:
        globals_block = (
            "\tlocal_certs\n"
            "\t# Clients trust <caddy data dir>/pki/authorities/local/root.crt.\n"
            "\tskip_install_trust\n"
            f"\thttps_port {site.https_port}\n"
            "\tauto_https disable_redirects\n"
        )
        tls_line = "\ttls internal\n"
        tls_comment = (
            "# TLS: a certificate from Caddy's local CA (local use; pass --domain for ACME).\n"
        )
    return (
        "# Rendered by `demigod deploy render caddy`; re-render rather than edit.\n"
        "# Caddy in front of the Phoenix DemiGod gateway (docs/security-waf.md#caddy).\n"
        "#\n"
        "# Per-IP rate limiting: not available in Debian's Caddy 2.6.2 (no rate_limit handler\n"
        "# in `caddy list-modules`); the gateway's tenant quotas limit traffic instead. With a\n"
        "# Caddy built with the caddy-ratelimit module, add a `rate_limit` block to the site.\n"
        "{\n"
        "\tadmin off\n"
        f"{globals_block}"
        "}\n"
        "\n"
        f"{tls_comment}"
        f"{site.address} {{\n"
        f"{tls_line}"
        "\t# Bodies past the limit are refused with 413 before they reach the gateway: by their\n"
        "\t# Content-Length up front, and (chunked uploads) by request_body while read.\n"
        f'\t@too_large expression {{http.request.header.Content-Length}} != "" && '
        f"int({{http.request.header.Content-Length}}) > {site.max_body_bytes}\n"
        "\thandle @too_large {\n"
        "\t\theader Content-Type application/json\n"
        f"\t\trespond `{too_large_error(site.max_body_bytes)}` 413\n"
        "\t}\n"
        "\trequest_body {\n"
        f"\t\tmax_size {site.max_body_bytes}\n"
        "\t}\n"
        "\theader {\n"
        f"{header_lines}"
        "\t\t-Server\n"
        "\t}\n"
        f"\treverse_proxy {site.gateway} {{\n"
        "\t\t# Server-sent events: pass every token on at once, never buffer.\n"
        "\t\tflush_interval -1\n"
        "\t\ttransport http {\n"
        f"\t\t\tresponse_header_timeout {UPSTREAM_TIMEOUT}\n"
        f"\t\t\tread_timeout {UPSTREAM_TIMEOUT}\n"
        "\t\t}\n"
        "\t}\n"
        "\tlog {\n"
        "\t\toutput stderr\n"
        "\t\tformat json\n"
        "\t}\n"
        "}\n"
    )


def render_caddy(site: CaddySite, out_dir: Path) -> list[Path]:
    """Write the Caddyfile under `out_dir`; returns the written paths. Raises OSError."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CADDYFILE
    path.write_text(render_caddyfile(site))
    return [path]
