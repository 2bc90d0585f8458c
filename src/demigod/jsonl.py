"""JSON lines, cut at "\\n" only: str.splitlines() would also cut at U+2028, U+0085 and
other separators that JSON strings may hold unescaped (prompts often do)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def json_lines(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line. Raises ValueError on bad JSON."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, json.loads(line)
