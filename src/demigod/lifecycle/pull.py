"""Fetch a Hugging Face-format checkpoint into the model store, pinned and verifiable.

Three kinds of source, one result:

- a Hugging Face hub repo id (`state-spaces/mamba-130m-hf`, or `hf://...`): the revision
  (branch, tag or commit) is resolved to a commit first and the snapshot is downloaded at
  that commit, so the files can never change under a recorded version;
- one GGUF file of a hub repo, ready to serve (as `llama-server -hf` fetches one):
  `owner/repo/file.gguf`, or `owner/repo:Q4_0` for the repo's one GGUF with that
  quantization in its name; pinned to a commit the same way;
- a local folder (`/path/to/checkpoint` or `file:///path`);
- an S3-compatible prefix (`s3://bucket/prefix`; AWS, MinIO, Ceph through `endpoint`).

Only the files the GGUF converter needs are fetched (`CONVERSION_PATTERNS`). Everything is
written into a staging folder under `dest_root/.partial/` and renamed into place once
complete, with a manifest of every file's sha256; so a folder under `dest_root` whose
manifest exists is complete, and an interrupted pull (even kill -9) leaves only staging
that the next pull resumes (hub) or restarts (local, S3).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from demigod.extras import require
from demigod.lifecycle.errors import LifecycleError

# What llama.cpp's converter reads: config, weights (safetensors preferred, PyTorch .bin
# only when a repo has no safetensors) and every tokenizer format it understands.
CONFIG_PATTERNS = ("config.json", "generation_config.json")
SAFETENSORS_PATTERNS = ("*.safetensors", "*.safetensors.index.json")
PYTORCH_PATTERNS = ("pytorch_model*.bin", "pytorch_model.bin.index.json")
TOKENIZER_PATTERNS = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "*.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "*.tiktoken",
    "rwkv_vocab*.txt",
)
CONVERSION_PATTERNS = CONFIG_PATTERNS + SAFETENSORS_PATTERNS + TOKENIZER_PATTERNS

MANIFEST_NAME = "pull-manifest.json"
STAGING_DIR = ".partial"

# Hub repo ids: "name" or "owner/name" (letters, digits, - _ .).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# One GGUF of a hub repo: owner/name/path/file.gguf, or owner/name:QUANT (llama-server -hf).
_HUB_GGUF_FILE = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)/(?P<file>\S+\.gguf)$"
)
_HUB_GGUF_QUANT = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*):(?P<quant>[\w.-]+)$"
)
_HASH_CHUNK = 1 << 20


class PullError(LifecycleError):
    """The source could not be fetched, or is not a checkpoint the converter can read."""


@dataclass(frozen=True)
class PulledModel:
    """A complete checkpoint folder in the store.

    `path`: the folder; for a hub GGUF, the GGUF file in it (ready to serve).
    `revision`: the hub commit the files were downloaded at; for local folders and S3, the
    sha256 of the file tree (names and contents), so equal trees get equal revisions.
    `files`: paths relative to `path`, sorted. `sha256`: each file's digest.
    """

    path: Path
    source_uri: str
    revision: str
    files: tuple[str, ...]
    sha256: dict[str, str] = field(default_factory=dict)


def pull(
    source: str,
    dest_root: Path,
    *,
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    s3_client: Any | None = None,
) -> PulledModel:
    """Fetch `source` into a folder under `dest_root` and return what was pulled.

    `revision` (hub only): branch, tag or commit, default the repo's default branch.
    `endpoint`: the hub's URL (default: HF_ENDPOINT or huggingface.co), or the S3 endpoint
    URL for `s3://` sources. `token`: hub token (default: HF_TOKEN / the hub login).
    `s3_client`: a ready boto3 S3 client (overrides `endpoint`). Pulling what is already
    complete in the store returns it without fetching. Raises PullError for an unknown
    repo, revision, bucket or folder, a download failure, or a source without config.json.
    """
    kind = source_kind(source)
    if kind == "hub-gguf":
        return _pull_hub_gguf(
            source.removeprefix("hf://"),
            dest_root,
            revision=revision,
            endpoint=endpoint,
            token=token,
        )
    if kind == "local":
        if revision is not None:
            raise PullError("--revision applies to hub repos only, not to local folders")
        return _pull_local(_local_path(source), dest_root)
    if kind == "s3":
        if revision is not None:
            raise PullError("--revision applies to hub repos only, not to s3:// sources")
        return _pull_s3(source, dest_root, endpoint=endpoint, client=s3_client)
    return _pull_hub(
        source.removeprefix("hf://"), dest_root, revision=revision, endpoint=endpoint, token=token
    )


def source_kind(source: str) -> str:
    """ "hub", "hub-gguf", "local" or "s3" for `source`; raises PullError when it is none."""
    if source.startswith("s3://"):
        return "s3"
    if source.startswith("file://") or Path(source).expanduser().is_dir():
        return "local"
    repo = source.removeprefix("hf://")
    if _HUB_GGUF_FILE.match(repo) or _HUB_GGUF_QUANT.match(repo):
        return "hub-gguf"
    if source.startswith("hf://") or _REPO_ID.match(source):
        return "hub"
    raise PullError(
        f"{source!r} is not a local folder, an s3://bucket/prefix URI, a hub repo id "
        "(owner/name) or a hub GGUF (owner/name/file.gguf, owner/name:QUANT)"
    )


def conversion_files(files: Iterable[str]) -> list[str]:
    """The subset of a repo's `files` the converter needs, sorted.

    PyTorch `.bin` weights are taken only when there are no safetensors (a repo often
    carries both, and the converter needs one).
    """
    # A name that climbs out of the folder (a hostile listing) is never a checkpoint file.
    names = [name for name in files if _is_safe_relative(name)]
    chosen = _matching(names, CONVERSION_PATTERNS)
    if not _matching(names, SAFETENSORS_PATTERNS):
        chosen |= _matching(names, PYTORCH_PATTERNS)
    return sorted(chosen)


def read_pulled(folder: Path) -> PulledModel | None:
    """The pulled model in `folder`, or None if the folder is absent or incomplete."""
    manifest_file = folder / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        return None
    return PulledModel(
        path=folder,
        source_uri=str(manifest["source_uri"]),
        revision=str(manifest["revision"]),
        files=tuple(manifest["files"]),
        sha256=dict(manifest["sha256"]),
    )


def _is_safe_relative(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and ".." not in parts and "\\" not in name


def _matching(names: Iterable[str], patterns: Iterable[str]) -> set[str]:
    patterns = tuple(patterns)
    # Patterns apply to the file's name: weights in a subfolder are still weights.
    return {
        name for name in names if any(fnmatch.fnmatch(name.rsplit("/", 1)[-1], p) for p in patterns)
    }


# --- hub -------------------------------------------------------------------------------


def _pull_hub(
    repo_id: str, dest_root: Path, *, revision: str | None, endpoint: str | None, token: str | None
) -> PulledModel:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RevisionNotFoundError,
    )

    source_uri = f"hf://{repo_id}"
    if revision is not None and _COMMIT.match(revision):
        # A commit never moves: what is complete in the store needs no network at all.
        existing = read_pulled(dest_root / _folder_name(repo_id) / revision)
        if existing is not None:
            return existing
    commit, listed = _hub_commit(HfApi(endpoint=endpoint, token=token), repo_id, revision)
    files = conversion_files(listed)
    if "config.json" not in files:
        raise PullError(f"{repo_id}@{commit} has no config.json: not a transformers checkpoint")

    final = dest_root / _folder_name(repo_id) / commit
    existing = read_pulled(final)
    if existing is not None:
        return existing
    # One staging folder per commit: a re-run after an interruption resumes its downloads.
    staging = dest_root / STAGING_DIR / f"{_folder_name(repo_id)}@{commit}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(
            repo_id,
            revision=commit,
            allow_patterns=files,
            local_dir=staging,
            endpoint=endpoint,
            token=token,
        )
    except (RevisionNotFoundError, EntryNotFoundError) as error:
        raise PullError(f"{repo_id}@{commit}: {error}") from error
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
        raise PullError(
            f"downloading {repo_id}@{commit} failed ({error}); run the pull again to resume"
        ) from error
    # huggingface_hub's own bookkeeping for local_dir downloads: not part of the model.
    shutil.rmtree(staging / ".cache", ignore_errors=True)
    missing = [name for name in files if not (staging / name).is_file()]
    if missing:
        raise PullError(f"{repo_id}@{commit}: download incomplete, missing {', '.join(missing)}")
    return _publish(staging, final, source_uri, commit, files)


def _hub_commit(api: Any, repo_id: str, revision: str | None) -> tuple[str, list[str]]:
    """(commit, file names) of `repo_id` at `revision` (default main). Raises PullError."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    wanted_revision = revision or "main"
    try:
        info = api.model_info(repo_id, revision=wanted_revision, files_metadata=False)
    except RevisionNotFoundError as error:
        raise PullError(f"{repo_id} has no revision {wanted_revision!r}") from error
    except GatedRepoError as error:
        raise PullError(f"{repo_id} is gated: accept its licence and set HF_TOKEN") from error
    except RepositoryNotFoundError as error:
        raise PullError(f"no hub repo {repo_id!r} (or it is private: set HF_TOKEN)") from error
    except (HfHubHTTPError, OSError) as error:
        raise PullError(f"cannot reach the hub for {repo_id}: {error}") from error
    if not info.sha:
        raise PullError(f"the hub gave no commit for {repo_id}@{wanted_revision}")
    return info.sha, [sibling.rfilename for sibling in info.siblings or []]


def _chosen_gguf(source: str, files: list[str]) -> str:
    """The one GGUF `source` names among the repo's `files`. Raises PullError."""
    ggufs = sorted(name for name in files if name.endswith(".gguf") and _is_safe_relative(name))
    if found := _HUB_GGUF_FILE.match(source):
        if found["file"] not in ggufs:
            raise PullError(f"{found['repo']} has no {found['file']} (its GGUFs: {ggufs})")
        return found["file"]
    found = _HUB_GGUF_QUANT.match(source)
    assert found is not None
    quant = found["quant"].lower()
    # As llama-server -hf: the quantization is a name part (model-Q4_0.gguf, model.q4_0.gguf).
    matches = [
        name
        for name in ggufs
        if quant in re.split(r"[-_.]", name.rsplit("/", 1)[-1].lower().removesuffix(".gguf"))
        or name.rsplit("/", 1)[-1].lower().removesuffix(".gguf").endswith(quant)
    ]
    if len(matches) != 1:
        raise PullError(
            f"{found['repo']}: {len(matches)} GGUF files match {found['quant']!r} "
            f"({matches or ggufs}); name the file: {found['repo']}/FILE.gguf"
        )
    return matches[0]


def _pull_hub_gguf(
    source: str, dest_root: Path, *, revision: str | None, endpoint: str | None, token: str | None
) -> PulledModel:
    """One GGUF file of a hub repo, at a pinned commit; `path` is the file."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    found = _HUB_GGUF_FILE.match(source) or _HUB_GGUF_QUANT.match(source)
    assert found is not None
    repo_id = found["repo"]
    commit, files = _hub_commit(HfApi(endpoint=endpoint, token=token), repo_id, revision)
    filename = _chosen_gguf(source, files)
    final = dest_root / _folder_name(repo_id) / f"{commit}--{_folder_name(filename)}"
    existing = read_pulled(final)
    if existing is None:
        staging = dest_root / STAGING_DIR / f"{_folder_name(repo_id)}@{commit}--gguf"
        staging.mkdir(parents=True, exist_ok=True)
        try:
            hf_hub_download(
                repo_id,
                filename,
                revision=commit,
                local_dir=staging,
                endpoint=endpoint,
                token=token,
            )
        except EntryNotFoundError as error:
            raise PullError(f"{repo_id}@{commit}: {error}") from error
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
            raise PullError(
                f"downloading {repo_id}/{filename}@{commit} failed ({error}); "
                "run the pull again to resume"
            ) from error
        shutil.rmtree(staging / ".cache", ignore_errors=True)
        existing = _publish(staging, final, f"hf://{repo_id}/{filename}", commit, [filename])
    return replace(existing, path=existing.path / filename)


# --- local folders ----------------------------------------------------------------------


def _local_path(source: str) -> Path:
    path = Path(urlparse(source).path) if source.startswith("file://") else Path(source)
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise PullError(f"no folder at {path}")
    return path


def _pull_local(folder: Path, dest_root: Path) -> PulledModel:
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    files = conversion_files(names)
    if "config.json" not in files:
        raise PullError(f"{folder} has no config.json: not a transformers checkpoint folder")
    digests = {name: _sha256(folder / name) for name in files}
    revision = _tree_digest(digests)
    final = dest_root / _folder_name(folder.name) / revision
    existing = read_pulled(final)
    if existing is not None:
        return existing
    staging = _fresh_staging(dest_root, f"{_folder_name(folder.name)}@{revision}")
    for name in files:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, target)
    return _publish(staging, final, folder.as_uri(), revision, files, expected=digests)


# --- S3 ---------------------------------------------------------------------------------


def _pull_s3(
    source: str, dest_root: Path, *, endpoint: str | None, client: Any | None
) -> PulledModel:
    botocore = require("botocore.exceptions", "pulling from s3://")
    parsed = urlparse(source)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    if not bucket:
        raise PullError(f"{source!r} names no bucket (expected s3://bucket/prefix)")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if client is None:
        client = require("boto3", "pulling from s3://").client("s3", endpoint_url=endpoint)
    try:
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        files = conversion_files(key[len(prefix) :] for key in keys)
        if "config.json" not in files:
            raise PullError(f"{source} has no config.json: not a transformers checkpoint")
        name = _folder_name(prefix.rstrip("/").rsplit("/", 1)[-1] or bucket)
        staging = _fresh_staging(dest_root, f"{name}@s3-{os.getpid()}")
        for relative in files:
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, prefix + relative, str(target))
    except (botocore.BotoCoreError, botocore.ClientError) as error:
        raise PullError(f"cannot fetch {source}: {error}") from error
    digests = {relative: _sha256(staging / relative) for relative in files}
    revision = _tree_digest(digests)
    final = dest_root / name / revision
    existing = read_pulled(final)
    if existing is not None:
        shutil.rmtree(staging, ignore_errors=True)
        return existing
    return _publish(staging, final, source.rstrip("/"), revision, files, expected=digests)


# --- shared -----------------------------------------------------------------------------


def _publish(
    staging: Path,
    final: Path,
    source_uri: str,
    revision: str,
    files: list[str],
    expected: dict[str, str] | None = None,
) -> PulledModel:
    """Hash the staged files, write the manifest, and rename the staging folder into place."""
    digests = {name: _sha256(staging / name) for name in files}
    if expected is not None and digests != expected:
        changed = sorted(name for name in files if digests[name] != expected.get(name))
        shutil.rmtree(staging, ignore_errors=True)
        raise PullError(f"{source_uri} changed while it was copied: {', '.join(changed)}")
    manifest = {"source_uri": source_uri, "revision": revision, "files": files, "sha256": digests}
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(final)  # atomic within one filesystem: whole or absent
    except OSError:
        if read_pulled(final) is None:  # not merely a concurrent pull that finished first
            raise
        shutil.rmtree(staging, ignore_errors=True)
    pulled = read_pulled(final)
    assert pulled is not None
    return pulled


def _fresh_staging(dest_root: Path, name: str) -> Path:
    staging = dest_root / STAGING_DIR / name
    if staging.exists():
        shutil.rmtree(staging)  # leftovers of an interrupted copy: start over
    staging.mkdir(parents=True)
    return staging


def _folder_name(name: str) -> str:
    return name.replace("/", "--")


def _tree_digest(digests: dict[str, str]) -> str:
    tree = "".join(f"{name}\0{digests[name]}\n" for name in sorted(digests))
    return hashlib.sha256(tree.encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
