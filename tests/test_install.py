"""A plain `pip install demigod` (no extras) serves a GGUF file: no torch, no boto3, redis or
psycopg; the features that need those say which extra to install.

The virtual environment is built once per set of declared dependencies and kept under
~/.cache/demigod/plain-install (llama-cpp-python comes from pip's wheel cache, built by
`make setup`); each run reinstalls only demigod itself, from a copy of this tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demigod.processes import free_port, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "demigod" / "plain-install"
HEAVY = ("torch", "transformers", "boto3", "botocore", "redis", "psycopg")


def _run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def _source_copy(target: Path) -> Path:
    """What `pip install .` reads, copied so that building leaves this tree untouched."""
    shutil.copytree(ROOT / "src", target / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="session")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin folder, with the current demigod installed without extras."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + sys.version.encode()).hexdigest()[
        :16
    ]
    home = CACHE / key
    source = _source_copy(tmp_path_factory.mktemp("source"))
    if not (home / ".complete").exists():
        shutil.rmtree(home, ignore_errors=True)
        venv.create(home, with_pip=True)
        installed = _run(home / "bin" / "python", "-m", "pip", "install", "--quiet", source)
        assert installed.returncode == 0, installed.stderr[-4000:]
        (home / ".complete").touch()
    else:  # the dependencies are current: refresh demigod's own code only
        installed = _run(
            home / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps",
            "--force-reinstall", source,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stderr[-4000:]
    return home / "bin"


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEMIGOD_", "VIRTUAL_ENV"))}
    return {**clean, "DEMIGOD_DATA_DIR": str(data_dir), **extra}


def test_the_plain_install_has_no_heavy_or_optional_packages(plain_install: Path) -> None:
    listed = _run(plain_install / "python", "-m", "pip", "list", "--format", "json")
    names = {row["name"].lower() for row in json.loads(listed.stdout)}
    assert "demigod" in names and "llama_cpp_python" in {n.replace("-", "_") for n in names}
    assert not names & set(HEAVY), names & set(HEAVY)
    typed = "import demigod, pathlib; print(pathlib.Path(demigod.__file__).parent / 'py.typed')"
    shipped = Path(_run(plain_install / "python", "-c", typed).stdout.strip())
    assert shipped.is_file()  # the package's types are part of its interface
    version = _run(plain_install / "demigod", "--version")
    assert version.returncode == 0 and version.stdout.startswith("demigod "), version.stderr


@pytest.fixture
def plain_server(plain_install: Path, tiny_model: Path, tmp_path: Path) -> Iterator[str]:
    """`demigod serve --model` from the plain install, with the default (required) auth."""
    port = free_port()
    log = (tmp_path / "serve.log").open("ab")
    process = subprocess.Popen(
        [plain_install / "demigod", "serve", "--model", f"tiny={tiny_model}", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_environment(tmp_path / "data", DEMIGOD_ENGINE__N_THREADS="1"),
        cwd=tmp_path,
    )
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/readyz", timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_plain_install_serves_a_gguf_file(
    plain_install: Path, plain_server: str, tmp_path: Path
) -> None:
    body = {"model": "tiny", "prompt": "Hello", "max_tokens": 4, "ignore_eos": True}
    refused = httpx.post(f"{plain_server}/v1/completions", json=body, timeout=60)
    assert refused.status_code == 401  # auth is on outside `make run`
    created = _run(
        plain_install / "demigod", "keys", "create", "--tenant", "me", "--name", "t", "--json",
        env=_environment(tmp_path / "data"), cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    reply = httpx.post(
        f"{plain_server}/v1/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["completion_tokens"] == 4


POSTGRES_URL = {"DEMIGOD_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/x"}
REDIS_URL = {"DEMIGOD_SECURITY__REDIS_URL": "redis://127.0.0.1:1"}


@pytest.mark.parametrize(
    ("command", "variables", "extra"),
    [
        (["models", "pull", "s3://bucket/model/"], {}, "s3"),
        (["models", "list"], POSTGRES_URL, "postgres"),
        (["serve", "--model", "tiny=TINY"], REDIS_URL, "redis"),
    ],
)
def test_a_missing_extra_is_named(
    plain_install: Path,
    tiny_model: Path,
    tmp_path: Path,
    command: list[str],
    variables: dict[str, str],
    extra: str,
) -> None:
    arguments = [part.replace("TINY", str(tiny_model)) for part in command]
    ran = _run(
        plain_install / "demigod", *arguments,
        env=_environment(tmp_path / "data", **variables), cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert f"pip install 'demigod[{extra}]'" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
