"""`pull`: hub repos through a local server speaking the hub's protocol, local folders."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demigod.lifecycle.pull import (
    MANIFEST_NAME,
    PullError,
    conversion_files,
    pull,
    read_pulled,
    source_kind,
)
from tests.lifecycle.hub_server import HubRepo, HubServer

REPO_ID = "demigod-tests/tiny-mamba-hf"

# Files a real hub repo carries beside the checkpoint; a pull must leave them out.
EXTRAS = {
    "README.md": b"# tiny mamba\n",
    "pytorch_model.bin": b"not needed: safetensors are there",
    "flax_model.msgpack": b"not needed either",
    ".gitattributes": b"*.safetensors filter=lfs\n",
}


def checkpoint_files(folder: Path) -> tuple[str, ...]:
    """What transformers saved: config.json, generation_config.json, model.safetensors."""
    return tuple(sorted(p.name for p in folder.iterdir()))


@pytest.fixture
def hub(hf_folder: Path) -> Iterator[tuple[HubServer, HubRepo, str, str]]:
    """The hub with REPO_ID: an old commit (config only changed) and main, tagged v1."""
    with HubServer() as server:
        repo = server.add_repo(REPO_ID)
        checkpoint = {p.name: p.read_bytes() for p in hf_folder.iterdir() if p.is_file()}
        old_config = json.loads(checkpoint["config.json"])
        old_config["demigod_test_marker"] = "old"
        old = repo.commit({**checkpoint, "config.json": json.dumps(old_config).encode()})
        new = repo.commit({**checkpoint, **EXTRAS})
        repo.refs["v1"] = new
        yield server, repo, old, new


def test_hub_pull_pins_the_branch_to_a_commit_and_fetches_only_what_conversion_needs(
    hub: tuple[HubServer, HubRepo, str, str], hf_folder: Path, tmp_path: Path
) -> None:
    server, _, _, new = hub
    pulled = pull(REPO_ID, tmp_path / "store", endpoint=server.url)

    assert pulled.revision == new
    assert pulled.source_uri == f"hf://{REPO_ID}"
    assert pulled.path == tmp_path / "store" / "demigod-tests--tiny-mamba-hf" / new
    assert pulled.files == checkpoint_files(hf_folder)
    for name in pulled.files:
        assert (pulled.path / name).read_bytes() == (hf_folder / name).read_bytes()
        assert pulled.sha256[name] == hashlib.sha256((hf_folder / name).read_bytes()).hexdigest()
    on_disk = sorted(p.name for p in pulled.path.iterdir())
    assert on_disk == sorted([*pulled.files, MANIFEST_NAME])  # no README, .bin, .cache
    fetched = {path.rsplit("/", 1)[-1] for method, path, _ in server.requests if method == "GET"}
    assert not fetched & set(EXTRAS)


def test_hub_pull_of_an_older_commit_or_a_tag(
    hub: tuple[HubServer, HubRepo, str, str], tmp_path: Path
) -> None:
    server, _, old, new = hub
    older = pull(REPO_ID, tmp_path, revision=old, endpoint=server.url)
    assert older.revision == old
    assert json.loads((older.path / "config.json").read_text())["demigod_test_marker"] == "old"
    assert pull(REPO_ID, tmp_path, revision="v1", endpoint=server.url).revision == new


def test_a_pinned_commit_already_in_the_store_needs_no_network(
    hub: tuple[HubServer, HubRepo, str, str], tmp_path: Path
) -> None:
    server, _, _, new = hub
    first = pull(REPO_ID, tmp_path, revision=new, endpoint=server.url)
    server.requests.clear()
    again = pull(REPO_ID, tmp_path, revision=new, endpoint="http://127.0.0.1:9")  # unreachable
    assert again == first
    assert server.requests == []


def test_unknown_repo_and_revision_are_named(
    hub: tuple[HubServer, HubRepo, str, str], tmp_path: Path
) -> None:
    server, _, _, _ = hub
    with pytest.raises(PullError, match="no hub repo 'nobody/nothing'"):
        pull("nobody/nothing", tmp_path, endpoint=server.url)
    with pytest.raises(PullError, match="has no revision 'no-such-branch'"):
        pull(REPO_ID, tmp_path, revision="no-such-branch", endpoint=server.url)


def test_a_repo_without_config_json_is_refused(tmp_path: Path) -> None:
    with HubServer() as server:
        server.add_repo("someone/dataset-like").commit({"data.csv": b"a,b\n"})
        with pytest.raises(PullError, match=r"no config\.json"):
            pull("someone/dataset-like", tmp_path, endpoint=server.url)


def test_an_interrupted_download_leaves_nothing_that_looks_complete_and_resumes(
    hub: tuple[HubServer, HubRepo, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # The client writes what it received in chunks (10 MiB by default; the file is ~6 MiB).
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
    server, _, _, new = hub
    final = tmp_path / "demigod-tests--tiny-mamba-hf" / new
    server.cut_after["model.safetensors"] = 1 << 20  # the connection drops after 1 MiB

    with pytest.raises(PullError, match="run the pull again to resume"):
        pull(REPO_ID, tmp_path, endpoint=server.url)
    assert not final.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / ".partial"]

    del server.cut_after["model.safetensors"]
    server.requests.clear()
    pulled = pull(REPO_ID, tmp_path, endpoint=server.url)
    assert pulled.path == final and (final / MANIFEST_NAME).is_file()
    resumed = [r for m, p, r in server.requests if m == "GET" and p.endswith("model.safetensors")]
    assert resumed == [f"bytes={1 << 20}-"]  # it went on from where the cut left it
    assert not list((tmp_path / ".partial").iterdir())


def test_a_pull_killed_mid_download_leaves_staging_only_and_the_next_one_completes(
    hub: tuple[HubServer, HubRepo, str, str], tmp_path: Path
) -> None:
    server, _, _, new = hub
    server.seconds_per_chunk["model.safetensors"] = 0.05  # ~1.3 MiB/s
    script = (
        "import sys, huggingface_hub.constants as c; c.DOWNLOAD_CHUNK_SIZE = 1 << 16\n"
        "from pathlib import Path; from demigod.lifecycle.pull import pull\n"
        "pull(sys.argv[1], Path(sys.argv[2]), endpoint=sys.argv[3])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, REPO_ID, str(tmp_path), server.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in tmp_path.rglob("*.incomplete")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = tmp_path / "demigod-tests--tiny-mamba-hf" / new
    assert not final.exists()

    del server.seconds_per_chunk["model.safetensors"]
    pulled = pull(REPO_ID, tmp_path, endpoint=server.url)
    assert pulled.path == final and read_pulled(final) == pulled
    for name in pulled.files:
        assert hashlib.sha256((final / name).read_bytes()).hexdigest() == pulled.sha256[name]


def test_local_folder_pull_copies_the_checkpoint_with_a_content_revision(
    hf_folder: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for path in hf_folder.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    (source / "README.md").write_text("ignored")

    pulled = pull(str(source), tmp_path / "store")
    assert pulled.files == checkpoint_files(hf_folder)
    assert pulled.source_uri == source.as_uri()
    assert len(pulled.revision) == 64
    assert pull(source.as_uri(), tmp_path / "store") == pulled  # same tree, same version

    (source / "config.json").write_text((source / "config.json").read_text() + " ")
    changed = pull(str(source), tmp_path / "store")
    assert changed.revision != pulled.revision and changed.path != pulled.path


def test_bad_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PullError, match=r"has no config\.json"):
        pull(str(tmp_path), tmp_path / "store")
    with pytest.raises(PullError, match="not a local folder"):
        source_kind("not a repo id!")
    with pytest.raises(PullError, match="hub repos only"):
        pull(str(tmp_path), tmp_path / "store", revision="main")


def test_conversion_files_prefers_safetensors_and_keeps_tokenizers() -> None:
    repo = [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "tokenizer.json",
        "tokenizer.model",
        "README.md",
        "onnx/model.onnx",
    ]
    assert conversion_files(repo) == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer.model",
    ]
    assert "pytorch_model.bin" in conversion_files(["config.json", "pytorch_model.bin"])
    # Names from a listing that would land outside the model folder are dropped.
    assert conversion_files(["config.json", "../../etc/config.json", "/abs/tokenizer.json"]) == [
        "config.json"
    ]


@pytest.mark.slow
def test_a_checkpoint_pulled_from_the_hub_converts_and_loads(
    hub: tuple[HubServer, HubRepo, str, str], tmp_path: Path, toolkit: Path
) -> None:
    import llama_cpp

    from demigod.lifecycle.convert import convert_hf_to_gguf

    server, _, _, _ = hub
    pulled = pull(REPO_ID, tmp_path / "store", endpoint=server.url)
    gguf = convert_hf_to_gguf(pulled.path, tmp_path / "tiny.F16.gguf", toolkit)
    model = llama_cpp.Llama(model_path=str(gguf), n_ctx=64, n_threads=1, verbose=False)
    try:
        assert model.n_vocab() == 50280 and model.tokenize(b"hello")
    finally:
        model.close()


GGUF_REPO = "demigod-tests/tiny-mamba-GGUF"


@pytest.fixture
def gguf_hub(random_gguf: Path) -> Iterator[tuple[HubServer, str, bytes]]:
    """A repo of GGUF files, as model publishers lay them out (one file per quantization)."""
    with HubServer() as server:
        repo = server.add_repo(GGUF_REPO)
        served = random_gguf.read_bytes()
        commit = repo.commit(
            {
                "tiny-mamba-Q4_0.gguf": served,
                "tiny-mamba-Q8_0.gguf": b"GGUF another quantization",
                "tiny-mamba-Q4_K_M.gguf": b"GGUF and another",
                "README.md": b"# GGUF builds\n",
            }
        )
        yield server, commit, served


def test_a_gguf_file_is_pulled_from_a_hub_repo_pinned_and_loads(
    gguf_hub: tuple[HubServer, str, bytes], tmp_path: Path
) -> None:
    import llama_cpp

    server, commit, served = gguf_hub
    pulled = pull(f"hf://{GGUF_REPO}/tiny-mamba-Q4_0.gguf", tmp_path / "store", endpoint=server.url)
    assert pulled.path.name == "tiny-mamba-Q4_0.gguf" and pulled.path.read_bytes() == served
    assert (pulled.revision, pulled.files) == (commit, ("tiny-mamba-Q4_0.gguf",))
    assert pulled.sha256 == {"tiny-mamba-Q4_0.gguf": hashlib.sha256(served).hexdigest()}
    assert pulled.source_uri == f"hf://{GGUF_REPO}/tiny-mamba-Q4_0.gguf"
    downloads = [r for r in server.requests if r[0] == "GET" and "/resolve/" in r[1]]
    assert [path.rsplit("/", 1)[-1] for _, path, _ in downloads] == ["tiny-mamba-Q4_0.gguf"]

    asked_before = len(server.requests)
    again = pull(f"{GGUF_REPO}:q4_0", tmp_path / "store", endpoint=server.url)  # as -hf
    assert again.path == pulled.path
    assert not [r for r in server.requests[asked_before:] if "/resolve/" in r[1]]  # stored
    model = llama_cpp.Llama(model_path=str(pulled.path), n_ctx=64, n_threads=1, verbose=False)
    try:
        assert model.create_completion("hi", max_tokens=2)["usage"]["completion_tokens"] >= 1
    finally:
        model.close()


def test_a_quantization_picks_one_gguf_or_says_which_exist(
    gguf_hub: tuple[HubServer, str, bytes], tmp_path: Path
) -> None:
    server, _, _ = gguf_hub
    q8 = pull(f"{GGUF_REPO}:Q8_0", tmp_path / "store", endpoint=server.url)
    assert q8.path.read_bytes() == b"GGUF another quantization"
    assert pull(f"{GGUF_REPO}:Q4_K_M", tmp_path / "store", endpoint=server.url).path.name == (
        "tiny-mamba-Q4_K_M.gguf"
    )
    with pytest.raises(PullError, match=r"0 GGUF files match 'Q5_K_S'.*tiny-mamba-Q4_0\.gguf"):
        pull(f"{GGUF_REPO}:Q5_K_S", tmp_path / "store", endpoint=server.url)
    with pytest.raises(PullError, match=r"has no missing\.gguf"):
        pull(f"{GGUF_REPO}/missing.gguf", tmp_path / "store", endpoint=server.url)
    assert source_kind(f"{GGUF_REPO}/sub/dir/x.gguf") == "hub-gguf"
    assert source_kind(GGUF_REPO) == "hub"
