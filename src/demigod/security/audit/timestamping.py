"""RFC 3161 trusted timestamps: ask a TSA to vouch that a digest existed at a time.

`rfc3161-client` (maintained by Trail of Bits for sigstore) builds the TimeStampReq and
verifies replies: status granted, messageImprint and nonce, the CMS signature (OpenSSL's
PKCS7_verify) with the signer's certificate chained — through any intermediates the token
carries — to a trusted CA at the token's time, and the signer's critical `timeStamping`
extended key usage. It replaced hand-written asn1crypto + cryptography code that could not
chain an intermediate CA (and took about 15 times as long per token).

Logs store the TimeStampToken (CMS ContentInfo DER) alone; it is wrapped back into a
granted TimeStampResp for verification.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted(0) }


class TimestampError(Exception):
    """A TSA could not be reached, refused, or answered with a token that does not verify."""


@dataclass(frozen=True)
class VerifiedTimestamp:
    gen_time: datetime
    serial_number: int
    policy: str
    tsa_certificate: x509.Certificate


def _der_sequence(content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return b"\x30" + bytes([size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return b"\x30" + bytes([0x80 | len(length)]) + length + content


def _response_of(token_der: bytes) -> TimeStampResponse:
    """A stored token as the granted TimeStampResp the verifier reads. Raises TimestampError."""
    try:
        return decode_timestamp_response(_der_sequence(_GRANTED + token_der))
    except ValueError as exc:
        raise TimestampError(f"token is malformed: {exc}") from exc


def _certificates(response: TimeStampResponse) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(der) for der in response.signed_data.certificates]


def _signer(response: TimeStampResponse) -> x509.Certificate:
    (signer_info, *others) = response.signed_data.signer_infos
    if others:
        raise TimestampError(f"token has {len(others) + 1} signers, expected 1")
    for certificate in _certificates(response):
        if (certificate.issuer, certificate.serial_number) == (
            signer_info.issuer,
            signer_info.serial_number,
        ):
            return certificate
    raise TimestampError("token does not include the TSA's certificate")


def _anchors(
    response: TimeStampResponse, trusted: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """The trust anchors: the pinned certificates; unpinned, a self-signed TSA certificate
    the token carries (its signature is checked, but not who the TSA is)."""
    if trusted:
        return list(trusted)
    own = [c for c in _certificates(response) if c.issuer == c.subject]
    if not own:
        raise TimestampError(
            f"the TSA's certificate is issued by {_signer(response).issuer.rfc4514_string()}: "
            "pin that CA (audit.tsa_cert_path, or audit verify --tsa-cert) to check it"
        )
    return own


_OPENSSL_VERIFY_ERROR = re.compile(r'Verify error: ([^"]+)"')


def _reason(error: str, *, pinned: bool) -> str:
    """A verification failure in words (OpenSSL's error stack names the check that failed)."""
    found = _OPENSSL_VERIFY_ERROR.search(error)
    if found is None:
        return f"token does not verify: {error}"
    detail = found.group(1)
    if detail == "unsuitable certificate purpose":
        return "the TSA's certificate lacks the timeStamping extended key usage"
    if pinned and ("issuer certificate" in detail or "self-signed" in detail):
        return f"the TSA's certificate does not chain to the trusted TSA certificates ({detail})"
    return f"the TSA's certificate does not verify: {detail}"


def verify_token(
    token_der: bytes,
    digest: bytes,
    *,
    trusted: Sequence[x509.Certificate] = (),
    nonce: int | None = None,
) -> VerifiedTimestamp:
    """Check a TimeStampToken over sha256 `digest`. Raises TimestampError saying why not:
    the imprint, the signature, the chain to `trusted` (CA or TSA certificates), the
    usage, the nonce."""
    response = _response_of(token_der)
    if response.tst_info.message_imprint.message != digest:
        raise TimestampError("token's messageImprint does not match the checkpoint")
    anchors = _anchors(response, trusted)
    try:
        VerifierBuilder(roots=anchors, nonce=nonce).build().verify(response, digest)
    except (VerificationError, ValueError) as exc:
        raise TimestampError(_reason(str(exc), pinned=bool(trusted))) from exc
    info = response.tst_info
    return VerifiedTimestamp(
        info.gen_time, info.serial_number, info.policy.dotted_string, _signer(response)
    )


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

    def timestamp(self, message: bytes) -> tuple[bytes, VerifiedTimestamp]:
        """(token DER, what it says) for sha256(`message`). Raises TimestampError."""
        request = (
            TimestampRequestBuilder()
            .data(message)
            .hash_algorithm(HashAlgorithm.SHA256)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            reply = self._client.post(
                self.url,
                content=request.as_bytes(),
                headers={"Content-Type": QUERY_CONTENT_TYPE},
            )
        except httpx.HTTPError as exc:
            raise TimestampError(f"TSA {self.url} unreachable: {exc}") from exc
        if reply.status_code != 200:
            raise TimestampError(f"TSA {self.url} answered HTTP {reply.status_code}")
        try:
            response = decode_timestamp_response(reply.content)
        except ValueError as exc:
            raise TimestampError(f"TSA reply is not a TimeStampResp: {exc}") from exc
        if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            reason = " ".join(response.status_string)
            raise TimestampError(f"TSA refused: {PKIStatus(response.status).name} {reason}")
        token = response.time_stamp_token()
        digest = hashlib.sha256(message).digest()
        return token, verify_token(token, digest, trusted=self._trusted, nonce=request.nonce)

    def close(self) -> None:
        self._client.close()


def token_certificates(token_der: bytes) -> list[x509.Certificate]:
    """Certificates carried in a token (for exporting them beside the log)."""
    return _certificates(_response_of(token_der))


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle. Raises ValueError when there is none."""
    return x509.load_pem_x509_certificates(pem)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


__all__ = [
    "TimestampClient",
    "TimestampError",
    "VerifiedTimestamp",
    "token_certificates",
    "verify_token",
]
