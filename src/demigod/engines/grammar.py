"""`OutputGrammar` → GBNF, the grammar language of llama.cpp's grammar sampler.

The JSON schema part is converted by llama-cpp-python's own converter (the Python twin of
llama.cpp's json-schema-to-grammar), then wrapped in the grammar's literal prefix and
suffix. Compiled grammars are cached: clients send the same schema over and over.
"""

from __future__ import annotations

import json
from functools import lru_cache

from llama_cpp.llama_grammar import SchemaConverter

from demigod.engines.base import InvalidGrammarError, OutputGrammar
from demigod.engines.json_schema import check_enforceable, enforceable_part

# The converter's string character admits raw control characters (newlines, tabs), which
# JSON forbids inside strings (RFC 8259 §7) and strict parsers reject; llama.cpp's C++
# converter has since excluded them the same way.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
# The name asked of the converter for the schema's rule, when it is not the whole grammar
# (it answers with the name it used: a primitive's own rule, say).
_JSON_RULE = "json-value"
# Between the markup and the JSON: models write a newline or two there, or nothing.
_WRAP_SPACE = "wrap-space ::= [ \\t\\n]{0,2}"


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
    if grammar.strict:
        check_enforceable(schema)
    else:
        schema = enforceable_part(schema)
    converter = SchemaConverter(  # type: ignore[no-untyped-call]  # llama-cpp-python's
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    wrapped = bool(grammar.prefix or grammar.suffix)
    try:
        resolved = converter.resolve_refs(schema, "request")
        json_rule = converter.visit(resolved, _JSON_RULE if wrapped else "")  # type: ignore[no-untyped-call]
        rules = str(converter.format_grammar())  # type: ignore[no-untyped-call]
    except Exception as exc:  # the converter raises bare Exceptions and asserts
        raise InvalidGrammarError(f"the JSON schema cannot be enforced: {exc}") from exc
    rules = rules.replace(_LOOSE_CHAR, _JSON_CHAR)
    if not wrapped:
        return rules
    parts = [gbnf_literal(grammar.prefix)] if grammar.prefix else []
    parts += ["wrap-space", json_rule, "wrap-space"]
    parts += [gbnf_literal(grammar.suffix)] if grammar.suffix else []
    return f"root ::= {' '.join(parts)}\n{_WRAP_SPACE}\n{rules}"
