"""Drift of kind `manifest`: the rendered manifests committed in git against a fresh render
of the declared configuration. A difference means someone changed mesh.yaml (or the
package version, which tags the images) without re-rendering, or edited a rendered file
by hand; either way git no longer says one thing.

Files are compared as data, not text: each YAML document is keyed by its kind and name
(or its position), each JSON file as a whole, and a difference names the first field that
differs and how many do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from demigod.ops.drift import ABSENT, Drift

# How much of a differing value a report shows.
VALUE_CHARS = 80


def _documents(relative: str, text: str) -> dict[str, Any]:
    """The file's documents by key: `Kind/name` for Kubernetes objects, `#N` otherwise."""
    if relative.endswith(".json"):
        return {"": json.loads(text)}
    documents: dict[str, Any] = {}
    for index, document in enumerate(yaml.safe_load_all(text)):
        if document is None:
            continue
        metadata = document.get("metadata") if isinstance(document, dict) else None
        if isinstance(metadata, dict) and "name" in metadata and "kind" in document:
            documents[f"{document['kind']}/{metadata['name']}"] = document
        else:
            documents[f"#{index}"] = document
    return documents


def differences(declared: Any, committed: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, declared value, committed value) of every leaf that differs; a key
    or list item on one side only is a leaf whose other side is ABSENT."""
    if isinstance(declared, dict) and isinstance(committed, dict):
        for key in sorted(set(declared) | set(committed), key=str):
            inner = f"{path}.{key}" if path else str(key)
            if key not in committed:
                yield inner, declared[key], ABSENT
            elif key not in declared:
                yield inner, ABSENT, committed[key]
            else:
                yield from differences(declared[key], committed[key], inner)
    elif isinstance(declared, list) and isinstance(committed, list):
        for index in range(max(len(declared), len(committed))):
            inner = f"{path}[{index}]"
            if index >= len(committed):
                yield inner, declared[index], ABSENT
            elif index >= len(declared):
                yield inner, ABSENT, committed[index]
            else:
                yield from differences(declared[index], committed[index], inner)
    elif declared != committed:
        yield path, declared, committed


def _show(path: str, value: Any) -> str:
    text = value if value == ABSENT else json.dumps(value, sort_keys=True)
    if len(text) > VALUE_CHARS:
        text = text[: VALUE_CHARS - 1] + "…"
    return f"{path}={text}" if path else text


def _file_drift(relative: str, declared: str, committed: str, where: str) -> list[Drift]:
    try:
        want, have = _documents(relative, declared), _documents(relative, committed)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        return [Drift("manifest", relative, "as rendered", f"unreadable: {exc}", where)]
    found = []
    for key in sorted(set(want) | set(have)):
        subject = f"{relative} {key}" if key else relative
        if key not in have:
            found.append(Drift("manifest", subject, "rendered", ABSENT, where))
            continue
        if key not in want:
            found.append(Drift("manifest", subject, ABSENT, "committed", where))
            continue
        changed = list(differences(want[key], have[key]))
        if changed:
            path, declared_value, committed_value = changed[0]
            more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
            found.append(
                Drift(
                    "manifest",
                    subject,
                    _show(path, declared_value),
                    _show(path, committed_value) + more,
                    where,
                )
            )
    return found


def manifest_drift(rendered: Mapping[str, str], committed_dir: Path) -> list[Drift]:
    """Each file of a fresh render (`rendered`: relative path -> text) against the tree
    committed at `committed_dir`: missing, extra and differing files and objects."""
    where = str(committed_dir)
    committed = (
        {
            path.relative_to(committed_dir).as_posix(): path
            for path in sorted(committed_dir.rglob("*"))
            if path.is_file()
        }
        if committed_dir.is_dir()
        else {}
    )
    if not committed:
        return [Drift("manifest", where, "rendered tree", ABSENT, where)]
    found: list[Drift] = []
    for relative in sorted(set(rendered) | set(committed)):
        if relative not in committed:
            found.append(Drift("manifest", relative, "rendered", ABSENT, where))
        elif relative not in rendered:
            found.append(Drift("manifest", relative, ABSENT, "committed", where))
        else:
            text = committed[relative].read_text("utf-8")
            if text != rendered[relative]:
                found += _file_drift(relative, rendered[relative], text, where)
    return found
