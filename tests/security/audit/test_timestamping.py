"""RFC 3161 over HTTP: our client against our test TSA and against OpenSSL's TSA, and
OpenSSL verifying our test TSA's tokens; every broken token is refused."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from demigod.security.audit.signing import SigningKey
from demigod.security.audit.timestamping import TimestampClient, TimestampError, verify_token
from demigod.security.audit.verify import verify_chain
from tests.conftest import require_binary
from tests.security.audit.conftest import open_log
from tests.security.audit.tsa import LocalTSA, make_tsa_identity, start_local_tsa

DIGEST = hashlib.sha256(b"checkpoint signature").digest()


def test_round_trip_and_openssl_agrees(tsa: LocalTSA, tmp_path: Path) -> None:
    openssl = require_binary("openssl")
    token, stamp = TimestampClient(tsa.url, trusted=[tsa.certificate]).timestamp(DIGEST)
    assert stamp.tsa_certificate == tsa.certificate
    (tmp_path / "token.der").write_bytes(token)
    checked = subprocess.run(
        [openssl, "ts", "-verify", "-digest", DIGEST.hex(), "-in", str(tmp_path / "token.der"),
         "-token_in", "-CAfile", str(tsa.write_certificate(tmp_path / "tsa.pem"))],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "Verification: OK" in checked.stdout, checked.stderr


@pytest.fixture(scope="module")
def openssl_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """OpenSSL's own TSA (`openssl ts -reply`) behind a tiny HTTP server."""
    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("openssl-tsa")
    key, certificate = make_tsa_identity("OpenSSL TSA")
    (folder / "tsa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "tsa.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(
        f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {folder}/serial
crypto_device = builtin
signer_cert = {folder}/tsa.pem
signer_key = {folder}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
    )
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                (folder / "q.tsq").write_bytes(query)
                subprocess.run(
                    [openssl, "ts", "-reply", "-config", str(folder / "tsa.cnf"), "-queryfile",
                     str(folder / "q.tsq"), "-out", str(folder / "r.tsr")],
                    check=True, capture_output=True,
                )  # fmt: skip
                answer = (folder / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder / "tsa.pem"
    server.shutdown()
    server.server_close()


def test_our_client_accepts_openssls_tsa(openssl_tsa: tuple[str, Path]) -> None:
    from demigod.security.audit.timestamping import load_certificates

    url, pem = openssl_tsa
    trusted = load_certificates(pem.read_bytes())
    token, stamp = TimestampClient(url, trusted=trusted).timestamp(DIGEST)
    assert stamp.policy == "1.2.3.4.1"
    assert verify_token(token, DIGEST, trusted=trusted).serial_number == stamp.serial_number


def test_a_token_for_another_digest_or_tsa_is_refused(tsa: LocalTSA) -> None:
    token, _ = TimestampClient(tsa.url).timestamp(DIGEST)
    with pytest.raises(TimestampError, match="messageImprint"):
        verify_token(token, hashlib.sha256(b"other").digest())
    _, stranger = make_tsa_identity("Stranger")
    with pytest.raises(TimestampError, match="not one of the trusted"):
        verify_token(token, DIGEST, trusted=[stranger])
    broken = bytearray(token)
    broken[-5] ^= 0xFF  # inside the signature
    with pytest.raises(TimestampError):
        verify_token(bytes(broken), DIGEST)


def test_a_tsa_without_the_timestamping_usage_is_refused() -> None:
    server = start_local_tsa(usage=False)
    try:
        with pytest.raises(TimestampError, match="timeStamping"):
            TimestampClient(server.url).timestamp(DIGEST)
    finally:
        server.stop()


def test_a_bad_tsa_signature_is_refused() -> None:
    server = start_local_tsa()
    server.tamper = lambda signature: signature[:-2] + bytes([signature[-2] ^ 1, signature[-1]])
    try:
        with pytest.raises(TimestampError, match="signature"):
            TimestampClient(server.url).timestamp(DIGEST)
    finally:
        server.stop()


def test_when_the_tsa_refuses_the_log_goes_on_and_verify_says_so(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    server = start_local_tsa()
    server.refuse = True
    try:
        log = open_log(tmp_path / "chain", signing_key, server)
        log.submit("request", {"i": 1}).result()
        checkpoint = log.seal()
        log.close()
    finally:
        server.stop()
    assert checkpoint is not None and checkpoint.timestamp_token is None
    assert "refused" in (checkpoint.timestamp_error or "")
    relaxed = verify_chain(tmp_path / "chain")
    assert relaxed.ok and any("not timestamped" in p.reason for p in relaxed.problems)
    strict = verify_chain(tmp_path / "chain", require_timestamps=True)
    assert not strict.ok and strict.first_bad is not None and strict.first_bad.seq == 0


def test_an_unreachable_tsa_does_not_stop_the_log(tmp_path: Path, signing_key: SigningKey) -> None:
    log = open_log(tmp_path / "chain", signing_key)
    log.timestamper = TimestampClient("http://127.0.0.1:9/tsa", timeout=1)
    assert log.submit("request", {"i": 1}).result().seq == 0
    checkpoint = log.seal()
    log.close()
    assert checkpoint is not None and "unreachable" in (checkpoint.timestamp_error or "")
    assert shutil.which("true")  # the log still closed cleanly
