"""Writing a rendered tree: every renderer returns {relative path: text}, written here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_tree(files: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write each file under `out_dir`, creating folders; returns the paths. Raises OSError."""
    written = []
    for relative, text in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
