"""A local RFC 3161 timestamp authority for tests: a self-signed certificate with the
timeStamping extended key usage, answering TimeStampReq over HTTP from a thread."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POLICY = "1.3.6.1.4.1.55555.1.1"


Identity = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _certificate(name: str, key: ec.EllipticCurvePrivateKey, issuer: Identity | None):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    return builder


def make_ca(name: str, issuer: Identity | None = None) -> Identity:
    """A certificate authority: self-signed (a root), or issued by `issuer` (an intermediate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _certificate(name, key, issuer)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )  # fmt: skip
    return key, builder.sign(key if issuer is None else issuer[0], hashes.SHA256())


def make_tsa_identity(
    name: str = "Test TSA", *, usage: bool = True, issuer: Identity | None = None
) -> Identity:
    """A TSA's key and certificate: self-signed, or issued by the CA `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _certificate(name, key, issuer)
    if usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return key, builder.sign(key if issuer is None else issuer[0], hashes.SHA256())


@dataclass
class LocalTSA:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)  # sent after the certificate
    url: str = ""
    requests: int = 0
    refuse: bool = False
    tamper: Callable[[bytes], bytes] | None = None
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _serial: int = 0

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_certificate(self, path: Path) -> Path:
        path.write_bytes(self.certificate_pem())
        return path

    def reply(self, request_der: bytes) -> bytes:
        request = tsp.TimeStampReq.load(request_der)
        if self.refuse:
            status = tsp.PKIStatusInfo(
                {"status": "rejection", "status_string": ["refused for the test"]}
            ).dump()
            return b"\x30" + bytes([len(status)]) + status  # TimeStampResp without a token
        self._serial += 1
        tst_info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": POLICY,
                "message_imprint": request["message_imprint"],
                "serial_number": self._serial,
                "gen_time": datetime.now(UTC).replace(microsecond=0),
                "nonce": request["nonce"].native,
            }
        )
        tst_der = tst_info.dump()
        certificate_der = self.certificate.public_bytes(serialization.Encoding.DER)
        cert = asn1_x509.Certificate.load(certificate_der)
        certificates = [cert] + [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
            for c in self.chain
        ]
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [
                        {
                            "certs": [
                                {
                                    "hash_algorithm": {"algorithm": "sha256"},
                                    "cert_hash": hashlib.sha256(certificate_der).digest(),
                                }
                            ]
                        }
                    ],
                },
            ]
        )
        to_sign = signed_attrs.dump()
        signature = self.key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        if self.tamper is not None:
            signature = self.tamper(signature)
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(tst_der),
                },
                "certificates": certificates if request["cert_req"].native else [],
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": cms.SignerIdentifier(
                            name="issuer_and_serial_number",
                            value={
                                "issuer": cert.issuer,
                                "serial_number": cert.serial_number,
                            },
                        ),
                        "digest_algorithm": {"algorithm": "sha256"},
                        "signed_attrs": signed_attrs,
                        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                        "signature": signature,
                    }
                ],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        return tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": token}
        ).dump()

    def start(self) -> LocalTSA:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_error(415)
                    return
                tsa.requests += 1
                answer = tsa.reply(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def start_local_tsa(*, usage: bool = True, issuer: Identity | None = None,
                    chain: list[x509.Certificate] | None = None) -> LocalTSA:  # fmt: skip
    key, certificate = make_tsa_identity(usage=usage, issuer=issuer)
    return LocalTSA(key, certificate, chain=chain or []).start()
