"""`OutputGrammar` → GBNF, the grammar language of llama.cpp's grammar sampler.

The JSON schema part is converted by llama-cpp-python's own converter (the Python twin of
llama.cpp's json-schema-to-grammar), then wrapped in the grammar's literal prefix and
suffix. Compiled grammars are cached: clients send the same schema over and over.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from llama_cpp.llama_grammar import SchemaConverter

from demigod.engines.base import InvalidGrammarError, OutputGrammar

# The converter's string character admits raw control characters (newlines, tabs), which
# JSON forbids inside strings (RFC 8259 §7) and strict parsers reject; llama.cpp's C++
# converter has since excluded them the same way.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
# The rule the converter writes the schema under, when it is not the whole grammar.
_JSON_RULE = "json-value"
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
# Characters with a meaning in the ECMAScript regexes of llama.cpp's lazy-grammar triggers.
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/]")


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    return json.dumps(text, ensure_ascii=False)


@lru_cache(maxsize=256)
def to_gbnf(grammar: OutputGrammar) -> str:
    """The GBNF text of `grammar`, its start rule named `root`.

    Raises InvalidGrammarError when the schema is not a JSON object or uses what the
    converter cannot express.
    """
    try:
        schema = json.loads(grammar.schema)
    except json.JSONDecodeError as exc:
        raise InvalidGrammarError(f"the JSON schema is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise InvalidGrammarError("a JSON schema must be a JSON object")
    check_enforceable(schema)
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    wrapped = bool(grammar.prefix or grammar.suffix)
    try:
        resolved = converter.resolve_refs(schema, "request")
        converter.visit(resolved, _JSON_RULE if wrapped else "")
        rules = converter.format_grammar()
    except Exception as exc:  # the converter raises bare Exceptions and asserts
        raise InvalidGrammarError(f"the JSON schema cannot be enforced: {exc}") from exc
    rules = rules.replace(_LOOSE_CHAR, _JSON_CHAR)
    if not wrapped:
        return rules
    parts = [gbnf_literal(part) for part in (grammar.prefix,) if part]
    parts.append(_JSON_RULE)
    parts += [gbnf_literal(part) for part in (grammar.suffix,) if part]
    return f"root ::= {' '.join(parts)}\n{rules}"


def check_enforceable(schema: object, path: str = "$") -> None:
    """Raise InvalidGrammarError naming the first keyword of `schema` (at its JSON path)
    that the grammar would not enforce."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise InvalidGrammarError(f"{path} is not a JSON schema (an object or a boolean)")
    for keyword, value in schema.items():
        if keyword in ANNOTATION_KEYWORDS:
            continue
        if keyword not in ENFORCED_KEYWORDS:
            raise InvalidGrammarError(
                f"the JSON schema keyword {keyword!r} at {path} cannot be enforced; "
                f"enforced keywords: {', '.join(sorted(ENFORCED_KEYWORDS))}"
            )
        if keyword == "format" and value not in ENFORCED_FORMATS:
            raise InvalidGrammarError(
                f"the string format {value!r} at {path} cannot be enforced; "
                f"enforced formats: {', '.join(sorted(ENFORCED_FORMATS))}"
            )
    for keyword in ("properties", "$defs", "definitions"):
        for name, child in (schema.get(keyword) or {}).items():
            check_enforceable(child, f"{path}.{keyword}.{name}")
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for position, child in enumerate(schema.get(keyword) or ()):
            check_enforceable(child, f"{path}.{keyword}[{position}]")
    items = schema.get("items")
    if isinstance(items, list):
        for position, child in enumerate(items):
            check_enforceable(child, f"{path}.items[{position}]")
    elif items is not None:
        check_enforceable(items, f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        check_enforceable(schema["additionalProperties"], f"{path}.additionalProperties")


def trigger_pattern(prefix: str) -> str:
    """The lazy-grammar trigger for `prefix`: llama.cpp matches it against all the text
    so far and feeds the grammar from the first group, the prefix itself."""
    escaped = _REGEX_SPECIAL.sub(lambda match: "\\" + match.group(0), prefix)
    return f"[\\s\\S]*?({escaped})[\\s\\S]*"
