"""The tamper-evident audit log: hash-chained JSONL records, signed and RFC 3161-timestamped
Merkle checkpoints, offline verification and export (docs/audit.md).

Modules: `records` (a record and its hash chain), `merkle` (checkpoint roots), `signing`
(Ed25519 keys), `timestamping` (RFC 3161 client), `checkpoints`, `store` (the writer:
group commit, rotation, retention), `verify`, `export`, `middleware` (one record per API
request), `cli` (`demigod audit`).
"""
