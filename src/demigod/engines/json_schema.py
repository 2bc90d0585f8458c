"""Which JSON-schema keywords an output grammar enforces (llama.cpp's converter), and what
to do with the others: refuse the schema (strict) or leave them out (best effort).

Pure data and functions: the gateway may read them without loading llama.cpp.
"""

from __future__ import annotations

from typing import Any

from demigod.engines.base import InvalidGrammarError

# JSON-schema keywords the converter turns into grammar rules. Any other keyword that
# constrains values (minimum, multipleOf, uniqueItems, not, ...) would be silently ignored
# by it, so a schema using one is refused instead.
ENFORCED_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems",
        "minItems", "maxItems", "enum", "const", "oneOf", "anyOf", "allOf", "$ref", "$defs",
        "definitions", "pattern", "minLength", "maxLength", "format",
    }
)  # fmt: skip
# Keywords that describe and constrain nothing.
ANNOTATION_KEYWORDS = frozenset(
    {
        "title", "description", "default", "examples", "$schema", "$id", "$comment",
        "readOnly", "writeOnly", "deprecated",
    }
)  # fmt: skip
ENFORCED_FORMATS = frozenset(
    {"date", "time", "date-time", "uuid", *(f"uuid{version}" for version in range(1, 6))}
)


class UnenforceableSchemaError(InvalidGrammarError):
    """A strict schema uses a keyword (or string format) that no grammar enforces."""


def check_enforceable(schema: Any, path: str = "$") -> None:
    """Raise UnenforceableSchemaError naming the first keyword of `schema` (with its JSON
    path) that a grammar would not enforce."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise UnenforceableSchemaError(f"{path} is not a JSON schema (an object or a boolean)")
    for keyword, value in schema.items():
        if keyword in ANNOTATION_KEYWORDS:
            continue
        if keyword not in ENFORCED_KEYWORDS:
            raise UnenforceableSchemaError(
                f"the JSON schema keyword {keyword!r} at {path} cannot be enforced; "
                f"enforced keywords: {', '.join(sorted(ENFORCED_KEYWORDS))}"
            )
        if keyword == "format" and value not in ENFORCED_FORMATS:
            raise UnenforceableSchemaError(
                f"the string format {value!r} at {path} cannot be enforced; "
                f"enforced formats: {', '.join(sorted(ENFORCED_FORMATS))}"
            )
    for child_path, child in _children(schema, path):
        check_enforceable(child, child_path)


def enforceable_part(schema: Any) -> Any:
    """`schema` without the keywords no grammar enforces: for a non-strict schema, what
    can be enforced is, and the rest constrains nothing (as OpenAI's non-strict schemas
    constrain nothing)."""
    if not isinstance(schema, dict):
        return schema
    kept = {
        keyword: value
        for keyword, value in schema.items()
        if (keyword in ENFORCED_KEYWORDS or keyword in ANNOTATION_KEYWORDS)
        and (keyword != "format" or value in ENFORCED_FORMATS)
    }
    for keyword in _MAPS:
        if isinstance(kept.get(keyword), dict):
            kept[keyword] = {name: enforceable_part(child) for name, child in kept[keyword].items()}
    for keyword in (*_LISTS, *_SINGLES):
        value = kept.get(keyword)
        if isinstance(value, list):
            kept[keyword] = [enforceable_part(child) for child in value]
        elif isinstance(value, dict):
            kept[keyword] = enforceable_part(value)
    return kept


# Where a schema holds sub-schemas: name -> schema maps, lists, single schemas.
_MAPS = ("properties", "$defs", "definitions")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SINGLES = ("items", "additionalProperties")  # `items` may also be a list (old tuples)


def _children(schema: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """The sub-schemas of `schema`, each with its JSON path."""
    found: list[tuple[str, Any]] = []
    for keyword in _MAPS:
        for name, child in (schema.get(keyword) or {}).items():
            found.append((f"{path}.{keyword}.{name}", child))
    for keyword in (*_LISTS, *_SINGLES):
        value = schema.get(keyword)
        if isinstance(value, list):
            found += [(f"{path}.{keyword}[{i}]", child) for i, child in enumerate(value)]
        elif isinstance(value, dict):
            found.append((f"{path}.{keyword}", value))
    return found
