"""A real OpenID provider (npm `oidc-provider`, run with Node.js) for the identity tests.

`npm ci` installs it from the committed package-lock.json into tests/security/oidc/
node_modules the first time (or .ci/run does it beforehand).
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from demigod.processes import ServerNotReadyError, free_port, wait_until_ready
from tests.conftest import require_binary

OIDC_DIR = Path(__file__).parent / "oidc"
AUDIENCE = "demigod"  # the gateway id (security.oidc.audience default)
RESOURCE = "urn:demigod:gateway"  # the resource indicator the client asks a token for
START_TIMEOUT = 30.0


def ensure_node_modules() -> str:
    """The node binary, once oidc-provider is installed (npm ci, under a lock)."""
    node = require_binary("node")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        npm = require_binary("npm")
        # One npm ci at a time (pytest-xdist workers, two checkouts); the lock lives in /tmp.
        with (Path(tempfile.gettempdir()) / "demigod-oidc-npm-ci.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
                subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300
                )
    return node


def rsa_private_jwk(kid: str) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    """A new RSA key as a private JWK (what the provider signs with) and as a key object."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk, key


@dataclass
class Client:
    client_id: str
    client_secret: str
    tenant: str | None = None


@dataclass
class OIDCProvider:
    """One provider process on a fixed port (so its issuer survives restarts)."""

    workdir: Path
    clients: list[Client]
    keys: list[dict[str, Any]]
    scopes: str = "model:tiny model:*"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        node = ensure_node_modules()
        self.starts += 1
        config = self.workdir / f"oidc-{self.starts}.json"
        config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "issuer": self.issuer,
                    "audience": AUDIENCE,
                    "resource": RESOURCE,
                    "scopes": self.scopes,
                    "jwks": {"keys": self.keys},
                    "clients": [vars(c) for c in self.clients],
                }
            )
        )
        log = self.workdir / f"oidc-{self.starts}.log"
        self.process = subprocess.Popen(
            [node, str(OIDC_DIR / "provider.mjs"), str(config)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=OIDC_DIR,
        )
        try:
            wait_until_ready(
                self.process,
                f"{self.issuer}/.well-known/openid-configuration",
                timeout=START_TIMEOUT,
            )
        except ServerNotReadyError as exc:
            raise RuntimeError(f"oidc-provider {exc}:\n{log.read_text()}") from exc

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def restart(self, keys: list[dict[str, Any]]) -> None:
        """Stop, then start serving (and signing with the first of) `keys`."""
        self.stop()
        self.keys = keys
        self.start()

    def token(self, client: Client, scope: str | None = None) -> str:
        """A client-credentials access token (a JWT for the gateway's audience)."""
        form = {
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "resource": RESOURCE,
        }
        if scope is not None:
            form["scope"] = scope
        reply = httpx.post(f"{self.issuer}/token", data=form, timeout=10)
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])
