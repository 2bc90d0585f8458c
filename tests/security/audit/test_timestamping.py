"""RFC 3161 over HTTP: our client against our test TSA and against OpenSSL's TSA (whose
certificate an intermediate CA issues), and OpenSSL verifying our test TSA's tokens;
every broken token is refused."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from demigod.processes import free_port
from demigod.security.audit.signing import SigningKey
from demigod.security.audit.timestamping import TimestampClient, TimestampError, verify_token
from demigod.security.audit.verify import verify_chain
from tests.conftest import require_binary
from tests.security.audit.conftest import open_log
from tests.security.audit.tsa import LocalTSA, make_ca, make_tsa_identity, start_local_tsa

MESSAGE = b"checkpoint signature"  # what is timestamped: its sha256 is the imprint
DIGEST = hashlib.sha256(MESSAGE).digest()


def test_round_trip_and_openssl_agrees(tsa: LocalTSA, tmp_path: Path) -> None:
    openssl = require_binary("openssl")
    token, stamp = TimestampClient(tsa.url, trusted=[tsa.certificate]).timestamp(MESSAGE)
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
    root = make_ca("Test Root CA")
    intermediate = make_ca("Test Intermediate CA", issuer=root)
    key, certificate = make_tsa_identity("OpenSSL TSA", issuer=intermediate)
    (folder / "root.pem").write_bytes(root[1].public_bytes(serialization.Encoding.PEM))
    (folder / "chain.pem").write_bytes(intermediate[1].public_bytes(serialization.Encoding.PEM))
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
certs = {folder}/chain.pem
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
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder / "root.pem"
    server.shutdown()
    server.server_close()


def test_our_client_accepts_openssls_tsa_through_its_intermediate_ca(
    openssl_tsa: tuple[str, Path],
) -> None:
    from demigod.security.audit.timestamping import load_certificates, token_certificates

    url, root_pem = openssl_tsa
    trusted = load_certificates(root_pem.read_bytes())  # the root CA only
    token, stamp = TimestampClient(url, trusted=trusted).timestamp(MESSAGE)
    assert stamp.policy == "1.2.3.4.1"
    assert stamp.tsa_certificate.issuer.rfc4514_string() == "CN=Test Intermediate CA"
    assert verify_token(token, DIGEST, trusted=trusted).serial_number == stamp.serial_number
    carried = {c.subject.rfc4514_string() for c in token_certificates(token)}
    assert carried == {"CN=OpenSSL TSA", "CN=Test Intermediate CA"}
    _, other_root = make_ca("Another Root CA")
    with pytest.raises(TimestampError, match="does not chain to the trusted"):
        verify_token(token, DIGEST, trusted=[other_root])
    with pytest.raises(TimestampError, match="pin that CA"):  # nothing to anchor it
        verify_token(token, DIGEST)


def test_a_token_for_another_digest_or_tsa_is_refused(tsa: LocalTSA) -> None:
    token, _ = TimestampClient(tsa.url).timestamp(MESSAGE)
    with pytest.raises(TimestampError, match="messageImprint"):
        verify_token(token, hashlib.sha256(b"other").digest())
    _, stranger = make_tsa_identity("Stranger")
    with pytest.raises(TimestampError, match="does not chain to the trusted"):
        verify_token(token, DIGEST, trusted=[stranger])
    broken = bytearray(token)
    broken[-5] ^= 0xFF  # inside the signature
    with pytest.raises(TimestampError):
        verify_token(bytes(broken), DIGEST)


def test_a_tsa_without_the_timestamping_usage_is_refused() -> None:
    server = start_local_tsa(usage=False)
    try:
        with pytest.raises(TimestampError, match="timeStamping"):
            TimestampClient(server.url).timestamp(MESSAGE)
    finally:
        server.stop()


def test_a_bad_tsa_signature_is_refused() -> None:
    server = start_local_tsa()
    server.tamper = lambda signature: signature[:-2] + bytes([signature[-2] ^ 1, signature[-1]])
    try:
        with pytest.raises(TimestampError, match="signature"):
            TimestampClient(server.url).timestamp(MESSAGE)
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
    log.timestamper = TimestampClient(f"http://127.0.0.1:{free_port()}/tsa", timeout=1)
    assert log.submit("request", {"i": 1}).result().seq == 0
    checkpoint = log.seal()
    assert log.submit("request", {"i": 2}).result().seq == 1  # still writing
    log.close()
    assert checkpoint is not None and "unreachable" in (checkpoint.timestamp_error or "")
    # What was written is whole: the chain verifies; only the timestamp is missing.
    report = verify_chain(tmp_path / "chain")
    assert report.ok and report.records == 2, report.problems
    assert [p.reason for p in report.problems if "timestamp" in p.reason] != []


def test_an_intermediate_ca_chains_to_the_pinned_root_and_openssl_agrees(
    tmp_path: Path,
) -> None:
    openssl = require_binary("openssl")
    root = make_ca("Pinned Root CA")
    intermediate = make_ca("Issuing CA", issuer=root)
    server = start_local_tsa(issuer=intermediate, chain=[intermediate[1]])
    try:
        token, stamp = TimestampClient(server.url, trusted=[root[1]]).timestamp(MESSAGE)
    finally:
        server.stop()
    assert stamp.tsa_certificate == server.certificate
    (tmp_path / "token.der").write_bytes(token)
    (tmp_path / "root.pem").write_bytes(root[1].public_bytes(serialization.Encoding.PEM))
    checked = subprocess.run(
        [openssl, "ts", "-verify", "-digest", DIGEST.hex(), "-in", str(tmp_path / "token.der"),
         "-token_in", "-CAfile", str(tmp_path / "root.pem")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "Verification: OK" in checked.stdout, checked.stderr
