"""Which gateway the ops commands talk to, and with which key (`ops.gateway_url`,
`ops.api_key`)."""

from __future__ import annotations

from demigod.config import Settings

# A gateway listening on every interface is reached through loopback.
_ANY_ADDRESS = {"0.0.0.0", "::", ""}


def gateway_url(settings: Settings) -> str:
    """`ops.gateway_url`, else the gateway this config serves."""
    if settings.ops.gateway_url:
        return settings.ops.gateway_url.rstrip("/")
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    return f"http://{host}:{settings.port}"


def api_key(settings: Settings) -> str | None:
    """`ops.api_key` in clear, for the Authorization header; None where auth is off."""
    return settings.ops.api_key.get_secret_value() if settings.ops.api_key else None
