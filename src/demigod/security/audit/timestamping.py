"""RFC 3161 trusted timestamps: ask a TSA to vouch that a digest existed at a time.

The request (TimeStampReq) is built and the reply (TimeStampResp) parsed with `asn1crypto`;
the reply's CMS signature is checked with `cryptography`: the token must carry our digest
(messageImprint) and nonce, its signed attributes must carry the digest of the TSTInfo and
the signer's certificate, the signer's certificate must have the timeStamping extended key
usage, and, when trust anchors are given, be one of them or be issued by one of them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha1": hashes.SHA1,
}


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp; asn1crypto's own makes the token mandatory, but a refusal
    (status rejection) carries none."""

    _fields = [  # noqa: RUF012 (asn1crypto reads this class attribute)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class TimestampError(Exception):
    """A TSA could not be reached, refused, or answered with a token that does not verify."""


@dataclass(frozen=True)
class VerifiedTimestamp:
    gen_time: datetime
    serial_number: int
    policy: str
    tsa_certificate: x509.Certificate


def build_request(digest: bytes, nonce: int) -> bytes:
    """DER TimeStampReq for a sha256 `digest`, asking for the TSA's certificate."""
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": tsp.MessageImprint(
                {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                    "hashed_message": digest,
                }
            ),
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return bytes(request.dump())


def token_from_response(response_der: bytes) -> bytes:
    """The TimeStampToken (DER ContentInfo) in a TimeStampResp. Raises TimestampError."""
    try:
        response = _TimeStampResp.load(response_der)
        status = response["status"]["status"].native
    except (ValueError, TypeError) as exc:
        raise TimestampError(f"TSA reply is not a TimeStampResp: {exc}") from exc
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native
        failure = response["status"]["fail_info"].native
        raise TimestampError(f"TSA refused: {status} {text or ''} {failure or ''}".strip())
    token = response["time_stamp_token"]
    if isinstance(token, core.Void) or token.native is None:
        raise TimestampError("TSA granted but sent no token")
    return bytes(token.dump())


class TimestampClient:
    """Asks `url` for timestamps over HTTP (RFC 3161 section 3.4), verifying every reply."""

    def __init__(
        self,
        url: str,
        *,
        trusted: Sequence[x509.Certificate] = (),
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self._trusted = list(trusted)
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def timestamp(self, digest: bytes) -> tuple[bytes, VerifiedTimestamp]:
        """(token DER, what it says) for a sha256 digest. Raises TimestampError."""
        nonce = secrets.randbits(63)
        try:
            reply = self._client.post(
                self.url,
                content=build_request(digest, nonce),
                headers={"Content-Type": QUERY_CONTENT_TYPE},
            )
        except httpx.HTTPError as exc:
            raise TimestampError(f"TSA {self.url} unreachable: {exc}") from exc
        if reply.status_code != 200:
            raise TimestampError(f"TSA {self.url} answered HTTP {reply.status_code}")
        token = token_from_response(reply.content)
        return token, verify_token(token, digest, trusted=self._trusted, nonce=nonce)

    def close(self) -> None:
        self._client.close()


def _signed_attribute(signer: cms.SignerInfo, name: str) -> object:
    for attribute in signer["signed_attrs"]:
        if attribute["type"].native == name:
            values = attribute["values"]
            if len(values) != 1:
                raise TimestampError(f"signed attribute {name} must have one value")
            return values[0]
    raise TimestampError(f"token lacks the {name} signed attribute")


def _signer_certificate(
    signed_data: cms.SignedData, signer: cms.SignerInfo
) -> tuple[x509.Certificate, bytes]:
    sid = signer["sid"]
    for choice in signed_data["certificates"] or []:
        if choice.name != "certificate":
            continue
        candidate = choice.chosen
        if sid.name == "issuer_and_serial_number":
            matches = (
                candidate.issuer == sid.chosen["issuer"]
                and candidate.serial_number == sid.chosen["serial_number"].native
            )
        else:
            matches = candidate.key_identifier == sid.chosen.native
        if matches:
            der = candidate.dump()
            return x509.load_der_x509_certificate(der), der
    raise TimestampError("token does not include the TSA's certificate")


def _check_signature(
    certificate: x509.Certificate, signature: bytes, data: bytes, algorithm: str, digest: str
) -> None:
    key = certificate.public_key()
    hash_type = _HASHES.get(digest)
    try:
        if isinstance(key, rsa.RSAPublicKey) and hash_type is not None:
            if algorithm == "rsassa_pss":
                key.verify(
                    signature,
                    data,
                    padding.PSS(padding.MGF1(hash_type()), padding.PSS.DIGEST_LENGTH),
                    hash_type(),
                )
            else:
                key.verify(signature, data, padding.PKCS1v15(), hash_type())
        elif isinstance(key, ec.EllipticCurvePublicKey) and hash_type is not None:
            key.verify(signature, data, ec.ECDSA(hash_type()))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise TimestampError(f"unsupported TSA signature {algorithm} with {digest}")
    except InvalidSignature as exc:
        raise TimestampError("the TSA's signature on the token is invalid") from exc


def _check_trust(certificate: x509.Certificate, trusted: Sequence[x509.Certificate]) -> None:
    if not trusted:
        return
    fingerprint = certificate.fingerprint(hashes.SHA256())
    for anchor in trusted:
        if anchor.fingerprint(hashes.SHA256()) == fingerprint:
            return
        try:
            certificate.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return
    raise TimestampError("the TSA's certificate is not one of the trusted TSA certificates")


def verify_token(
    token_der: bytes,
    digest: bytes,
    *,
    trusted: Sequence[x509.Certificate] = (),
    nonce: int | None = None,
) -> VerifiedTimestamp:
    """Check a TimeStampToken over sha256 `digest`. Raises TimestampError saying why not."""
    try:
        token = cms.ContentInfo.load(token_der)
        if token["content_type"].native != "signed_data":
            raise TimestampError("token is not CMS SignedData")
        signed_data = token["content"]
        encapsulated = signed_data["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise TimestampError("token does not encapsulate a TSTInfo")
        tst_der = bytes(encapsulated["content"].contents)
        tst_info = tsp.TSTInfo.load(tst_der)
        imprint = tst_info["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].native != "sha256":
            raise TimestampError("token's messageImprint is not sha256")
        if imprint["hashed_message"].native != digest:
            raise TimestampError("token's messageImprint does not match the checkpoint")
        if nonce is not None and tst_info["nonce"].native != nonce:
            raise TimestampError("token's nonce does not match the request")
        signers = signed_data["signer_infos"]
        if len(signers) != 1:
            raise TimestampError(f"token has {len(signers)} signers, expected 1")
        signer = signers[0]
        digest_name = signer["digest_algorithm"]["algorithm"].native
        if digest_name not in _HASHES:
            raise TimestampError(f"unsupported digest {digest_name}")
        if signer["signed_attrs"].native is None:
            raise TimestampError("token has no signed attributes")
        content_type = _signed_attribute(signer, "content_type")
        if getattr(content_type, "native", None) != "tst_info":
            raise TimestampError("signed content-type is not TSTInfo")
        message_digest = _signed_attribute(signer, "message_digest")
        expected = hashlib.new(digest_name, tst_der).digest()
        if getattr(message_digest, "native", None) != expected:
            raise TimestampError("signed message-digest does not match the TSTInfo")
        certificate, certificate_der = _signer_certificate(signed_data, signer)
        _check_signing_certificate(signer, certificate_der)
        attributes = signer["signed_attrs"].dump()
        # The signature covers the attributes as a SET OF (tag 0x31), not [0] IMPLICIT.
        signed_bytes = b"\x31" + attributes[1:]
        _check_signature(
            certificate,
            bytes(signer["signature"].native),
            signed_bytes,
            signer["signature_algorithm"].signature_algo,
            digest_name,
        )
        gen_time = tst_info["gen_time"].native
        policy = tst_info["policy"].dotted
        serial = tst_info["serial_number"].native
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"token is malformed: {exc}") from exc
    _check_usage(certificate, gen_time)
    _check_trust(certificate, trusted)
    return VerifiedTimestamp(gen_time, serial, policy, certificate)


def _check_signing_certificate(signer: cms.SignerInfo, certificate_der: bytes) -> None:
    """RFC 3161/5816: the signed ESS signing-certificate(-v2) attribute names the signer."""
    for attribute in signer["signed_attrs"]:
        name = attribute["type"].native
        if name not in ("signing_certificate", "signing_certificate_v2"):
            continue
        value = attribute["values"][0]
        first = value["certs"][0]
        if name == "signing_certificate":
            algorithm = "sha1"
        else:
            algorithm = first["hash_algorithm"]["algorithm"].native or "sha256"
        if first["cert_hash"].native != hashlib.new(algorithm, certificate_der).digest():
            raise TimestampError("signing-certificate attribute names another certificate")
        return
    raise TimestampError("token lacks the ESS signing-certificate attribute")


def _check_usage(certificate: x509.Certificate, when: datetime) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TimestampError("TSA certificate lacks the timeStamping extended key usage") from exc
    if ExtendedKeyUsageOID.TIME_STAMPING not in usage.value:
        raise TimestampError("TSA certificate lacks the timeStamping extended key usage")
    if not certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc:
        raise TimestampError("token's time is outside the TSA certificate's validity")


def token_certificates(token_der: bytes) -> list[x509.Certificate]:
    """Certificates carried in a token (for exporting them beside the log)."""
    token = cms.ContentInfo.load(token_der)
    return [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in token["content"]["certificates"] or []
        if choice.name == "certificate"
    ]


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle. Raises ValueError when there is none."""
    return x509.load_pem_x509_certificates(pem)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


__all__ = [
    "TimestampClient",
    "TimestampError",
    "VerifiedTimestamp",
    "build_request",
    "token_certificates",
    "verify_token",
]
