"""n8n from the npm registry, installed once per version under ~/.cache/demigod/n8n-VERSION
from tests/orchestration/n8n/package-lock.json (`npm ci`, about 13 minutes and 2.4 GB the
first time) and reused by every later run. `.ci/run` installs it before the suite, where
no per-test timeout applies (`python -m tests.orchestration.n8n_home`)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

PINNED = Path(__file__).resolve().parent / "n8n"
INSTALL_TIMEOUT_SECONDS = 3600


def n8n_version() -> str:
    manifest = json.loads((PINNED / "package.json").read_text())
    return str(manifest["dependencies"]["n8n"])


def ensure_n8n(npm: str = "npm") -> Path:
    """The `n8n` executable of the pinned version, installed first when missing or when
    package-lock.json changed. Raises CalledProcessError when `npm ci` fails."""
    home = Path.home() / ".cache" / "demigod" / f"n8n-{n8n_version()}"
    lock = (PINNED / "package-lock.json").read_bytes()
    stamp, wanted = home / ".installed", hashlib.sha256(lock).hexdigest()
    executable = home / "node_modules" / ".bin" / "n8n"
    if not executable.exists() or not stamp.is_file() or stamp.read_text() != wanted:
        home.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PINNED / name, home / name)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=home,
            check=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
        )
        stamp.write_text(wanted)
    return executable


if __name__ == "__main__":
    print(ensure_n8n())
