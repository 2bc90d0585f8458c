"""`demigod audit verify` names the first bad record for every kind of tampering."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from demigod.cli import app
from demigod.security.audit.records import canonical_json, sha256_hex
from demigod.security.audit.signing import SigningKey, public_key_pem
from tests.security.audit.conftest import write_chain
from tests.security.audit.tsa import LocalTSA

RECORDS, EVERY = 40, 10  # checkpoints 0..3 seal records 0-9, 10-19, 20-29, 30-39


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTSA) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pristine")
    key = SigningKey.load_or_create(root / "key.pem")
    (root / "pub.pem").write_bytes(public_key_pem(key.public_key))
    write_chain(root / "chain", key, tsa, RECORDS, EVERY)
    tsa.write_certificate(root / "tsa.pem")
    return root / "chain", root


def verify(chain: Path, root: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "verify",
            "--dir",
            str(chain),
            "--public-key",
            str(root / "pub.pem"),
            "--tsa-cert",
            str(root / "tsa.pem"),
            "--json",
            *extra,
        ],
    )
    return result.exit_code, json.loads(result.stdout)


def lines(chain: Path) -> list[bytes]:
    (segment,) = sorted(chain.glob("records-*.jsonl"))
    return segment.read_bytes().splitlines(keepends=True)


def rewrite(chain: Path, new: list[bytes]) -> None:
    (segment,) = sorted(chain.glob("records-*.jsonl"))
    segment.write_bytes(b"".join(new))


def modify(chain: Path) -> None:
    all_lines = lines(chain)
    all_lines[13] = all_lines[13].replace(b'"acme"', b'"evil"')
    rewrite(chain, all_lines)


def delete(chain: Path) -> None:
    all_lines = lines(chain)
    del all_lines[17]
    rewrite(chain, all_lines)


def reorder(chain: Path) -> None:
    all_lines = lines(chain)
    all_lines[21], all_lines[22] = all_lines[22], all_lines[21]
    rewrite(chain, all_lines)


def truncate(chain: Path) -> None:
    rewrite(chain, lines(chain)[:35])


def truncate_mid_line(chain: Path) -> None:
    all_lines = lines(chain)
    rewrite(chain, [*all_lines[:39], all_lines[39][:20]])


def delete_first(chain: Path) -> None:
    rewrite(chain, lines(chain)[1:])


def rechain(chain: Path) -> None:
    """Alter record 25 and recompute every hash after it: the links all hold again, only
    the signed Merkle root of checkpoint 2 can tell."""
    all_lines = lines(chain)
    records = [json.loads(line) for line in all_lines]
    records[25]["data"]["tenant"] = "evil"
    for index in range(25, len(records)):
        records[index]["prev"] = records[index - 1]["hash"]
        body = {k: v for k, v in records[index].items() if k != "hash"}
        records[index]["hash"] = sha256_hex(canonical_json(body))
    rewrite(chain, [canonical_json(r) + b"\n" for r in records])


def forge_signature(chain: Path) -> None:
    checkpoints = (chain / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    forged = json.loads(checkpoints[1])
    signature = bytearray(base64.b64decode(forged["signature"]))
    signature[0] ^= 1
    forged["signature"] = base64.b64encode(bytes(signature)).decode()
    checkpoints[1] = canonical_json(forged) + b"\n"
    (chain / "checkpoints.jsonl").write_bytes(b"".join(checkpoints))


def resign_with_another_key(chain: Path) -> None:
    """An attacker re-signs checkpoint 2 with their own key (and stores their public key
    beside the log): the pinned key rejects it."""
    from demigod.security.audit.checkpoints import Checkpoint
    from demigod.security.audit.signing import Ed25519PrivateKey

    attacker = SigningKey(Ed25519PrivateKey.generate())
    checkpoints = (chain / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    original = Checkpoint.from_line(checkpoints[2])
    payload = {**original.payload(), "key_id": attacker.key_id}
    signature = base64.b64encode(attacker.sign(canonical_json(payload))).decode()
    checkpoints[2] = canonical_json({**json.loads(checkpoints[2]), **payload,
                                     "signature": signature}) + b"\n"  # fmt: skip
    (chain / "checkpoints.jsonl").write_bytes(b"".join(checkpoints))
    (chain / "public-keys" / f"{attacker.key_id}.pem").write_bytes(
        public_key_pem(attacker.public_key)
    )


def swap_timestamp(chain: Path) -> None:
    """Checkpoint 3 carries checkpoint 0's (genuine) timestamp token."""
    checkpoints = [
        json.loads(line) for line in (chain / "checkpoints.jsonl").read_bytes().splitlines()
    ]
    checkpoints[3]["timestamp_token"] = checkpoints[0]["timestamp_token"]
    (chain / "checkpoints.jsonl").write_bytes(
        b"".join(canonical_json(c) + b"\n" for c in checkpoints)
    )


def drop_checkpoint(chain: Path) -> None:
    checkpoints = (chain / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    del checkpoints[1]
    (chain / "checkpoints.jsonl").write_bytes(b"".join(checkpoints))


CASES: list[tuple[Callable[[Path], None], int, str]] = [
    (modify, 13, "altered"),
    (delete, 17, "deleted or moved"),
    (reorder, 21, "found record 22"),
    (truncate, 35, "truncated"),
    (truncate_mid_line, 39, "torn"),
    (delete_first, 0, "missing"),
    (rechain, 20, "signed root of checkpoint 2"),
    (forge_signature, 10, "signature does not verify"),
    (resign_with_another_key, 20, "no trusted public key"),
    (swap_timestamp, 30, "messageImprint does not match"),
    (drop_checkpoint, 10, "not covered by any checkpoint"),
]


def test_the_untouched_chain_verifies(pristine: tuple[Path, Path]) -> None:
    chain, root = pristine
    code, report = verify(chain, root, "--strict")
    assert code == 0, report
    (only,) = report["chains"]
    assert only["records"] == RECORDS
    assert only["checkpoints"] == RECORDS // EVERY
    assert only["timestamped"] == RECORDS // EVERY
    assert only["problems"] == []


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"), CASES, ids=[c[0].__name__ for c in CASES]
)
def test_tampering_is_detected_at_the_first_bad_record(
    pristine: tuple[Path, Path],
    tmp_path: Path,
    tamper: Callable[[Path], None],
    first_bad: int,
    reason: str,
) -> None:
    chain = tmp_path / "chain"
    shutil.copytree(pristine[0], chain)
    tamper(chain)
    code, report = verify(chain, pristine[1])
    assert code == 1
    bad = report["chains"][0]["first_bad"]
    assert bad["seq"] == first_bad, report
    assert reason in bad["reason"], report
    assert report["ok"] is False


def test_human_output_names_the_first_bad_record(
    pristine: tuple[Path, Path], tmp_path: Path
) -> None:
    chain = tmp_path / "chain"
    shutil.copytree(pristine[0], chain)
    modify(chain)
    result = CliRunner().invoke(app, ["audit", "verify", "--dir", str(chain)])
    assert result.exit_code == 1
    assert "FIRST BAD RECORD 13" in result.stdout


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no audit log" in result.stderr
