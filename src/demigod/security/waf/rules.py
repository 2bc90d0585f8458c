"""The versioned rule set: patterns of known prompt-injection phrasings, English and Spanish.

Each rule has a stable id (`PI-001`) that block responses, logs and the
`demigod_waf_blocked_total{rule}` metric carry. Patterns match the *folded* text
(lower case, no diacritics, digits-for-letters undone, single spaces; see normalize.fold),
so "IGNORÁ  las instrucciónes" and "1gn0re" are covered without spelling variants here.
Add a rule by appending to RULES and bumping RULESET_VERSION.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULESET_VERSION = "2026.11.26-1"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    language: str  # "en", "es" or "any"
    # Every match contains one of these substrings: a cheap test that skips the regex on
    # most text (a prompt of 512 tokens is screened by 11 rules in tens of microseconds).
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]

    def matches(self, folded: str) -> bool:
        if not any(keyword in folded for keyword in self.keywords):
            return False
        return self.pattern.search(folded) is not None


def _rule(
    rule_id: str, name: str, language: str, keywords: tuple[str, ...], *alternatives: str
) -> Rule:
    pattern = re.compile("|".join(f"(?:{a})" for a in alternatives))
    return Rule(rule_id, name, language, keywords, pattern)


_EN_IGNORE = r"ignore|disregard|forget|skip|overlook|override|bypass|drop|abandon|discard"
_EN_EARLIER = r"previous|prior|above|earlier|preceding|initial|original|former|existing|system"
_EN_ORDERS = r"instructions?|prompts?|rules|directions|directives|guidelines|guardrails|orders"
_ES_IGNORE = (
    r"ignora|ignore|ignoren|ignorar|olvida|olvidate|olvide|olviden|descarta|omite|"
    r"haz caso omiso (?:a|de)|pasa por alto|no hagas caso (?:a|de)|salta(?:te)?"
)
_ES_ORDERS = r"instrucciones|indicaciones|reglas|ordenes|directrices|normas|prompt|consignas"
_ES_EARLIER = r"anteriores|previas|de arriba|iniciales|originales|del sistema|de sistema|dadas"

RULES: tuple[Rule, ...] = (
    _rule(
        "PI-001",
        "ignore previous instructions",
        "en",
        (
            "ignore",
            "disregard",
            "forget",
            "skip",
            "overlook",
            "override",
            "bypass",
            "drop",
            "abandon",
            "discard",
        ),
        rf"\b(?:{_EN_IGNORE})\b[^.?!\n]{{0,40}}\b(?:{_EN_EARLIER})\b[^.?!\n]{{0,25}}"
        rf"\b(?:{_EN_ORDERS})\b",
        r"\b(?:ignore|disregard|forget) (?:everything|all|anything) (?:above|before|you were told)",
    ),
    _rule(
        "PI-002",
        "ignora las instrucciones anteriores",
        "es",
        (
            "ignor",
            "olvid",
            "descarta",
            "omite",
            "caso omiso",
            "pasa por alto",
            "no hagas caso",
            "salta",
        ),
        rf"\b(?:{_ES_IGNORE})\b[^.?!\n]{{0,40}}\b(?:{_ES_ORDERS})\b[^.?!\n]{{0,25}}"
        rf"\b(?:{_ES_EARLIER})",
        r"\b(?:ignora|olvida|olvidate de) (?:todo )?lo (?:anterior|que te (?:dijeron|han dicho))",
    ),
    _rule(
        "PI-003",
        "role hijack",
        "en",
        (
            "you are now",
            "from now on",
            "act as",
            "pretend",
            "roleplay",
            "you will now act",
            "you are no longer",
            "your new",
        ),
        r"\b(?:you are now|from now on,? you(?: are|'re| will be)|act as|pretend (?:to be|you are)|"
        r"roleplay as|you will now act as)\b[^.?!\n]{0,50}\b(?:unrestricted|unfiltered|uncensored|"
        r"jailbroken|evil|amoral|without (?:any )?(?:restrictions|limits|filters|rules|ethics)|"
        r"no (?:restrictions|limits|filters|rules))",
        r"\byou are no longer (?:an? )?(?:ai|assistant|language model|bound by|chatgpt|restricted)",
        r"\byour new (?:role|persona|identity) is\b",
    ),
    _rule(
        "PI-004",
        "secuestro de rol",
        "es",
        (
            "ahora eres",
            "a partir de ahora",
            "actua como",
            "finge",
            "haz ",
            "comportate",
            "ya no eres",
            "tu nuevo",
        ),
        r"\b(?:ahora eres|a partir de ahora(?:,)? (?:eres|seras|actuaras)|actua como|"
        r"finge (?:ser|que eres)|"
        r"haz (?:el papel )?de|comportate como)\b[^.?!\n]{0,50}\b(?:sin (?:restricciones|limites|"
        r"filtros|censura|reglas|etica)|malvad[oa]|liberad[oa]|sin ninguna restriccion)",
        r"\bya no eres (?:un |una )?(?:asistente|ia|modelo|chatbot)",
        r"\btu nuevo (?:rol|papel|personaje) es\b",
    ),
    _rule(
        "PI-005",
        "system prompt exfiltration",
        "en",
        ("your", "repeat", "print", "output", "copy"),
        r"\b(?:reveal|show|print|repeat|output|display|tell me|leak|dump|give me|write out|recite|"
        r"spell out)\b[^.?!\n]{0,30}\byour\b[^.?!\n]{0,15}\b(?:system prompt|system message|"
        r"initial (?:prompt|instructions)|hidden (?:prompt|instructions)|original (?:prompt|"
        r"instructions)|pre-?prompt|instructions)\b",
        r"\b(?:repeat|print|output|copy) (?:everything|all|the text|the words) "
        r"(?:above|before this)",
        r"\bwhat (?:is|was|are|were) your (?:system prompt|initial instructions|"
        r"original instructions)",
    ),
    _rule(
        "PI-006",
        "exfiltracion del prompt del sistema",
        "es",
        ("prompt", "instrucciones", "mensaje", "repite", "imprime", "copia"),
        r"\b(?:revela|revelame|muestra|muestrame|imprime|repite|dime|ensename|filtra|escribe|"
        r"copia|cual es|cuales son)\b[^.?!\n]{0,30}\b(?:tu|tus)\b[^.?!\n]{0,15}"
        r"\b(?:prompt (?:del|de) sistema|prompt (?:inicial|original|oculto)|instrucciones "
        r"(?:del sistema|de sistema|iniciales|ocultas|originales|secretas)|"
        r"mensaje (?:del|de) sistema)",
        r"\b(?:repite|imprime|copia) todo (?:lo )?(?:anterior|de arriba|lo que hay arriba)",
    ),
    _rule(
        "PI-007",
        "delimiter injection",
        "any",
        (
            "<|",
            "[inst]",
            "<<sys>>",
            "<system>",
            "<instruction",
            "##",
            "===",
            "---",
            "end of",
            "fin del",
        ),
        # Chat-template tokens opening a turn, or a complete fake system block (a question
        # that only names `[INST]` or `<system>` is not an injection).
        r"<\|(?:im_start|start_header_id)\|> ?(?:system|user|assistant|developer)\b",
        r"<\|(?:im_end|eot_id|endoftext|end_header_id)\|>[^\n]{0,20}(?:\n|<\|)",
        r"\[inst\][^\n]{1,400}\[/inst\]|<<sys>>[^\n]{1,400}<</sys>>",
        r"<(system|instructions?)>[^<]{1,500}</\1>",
        r"(?:^|\n) ?(?:#{2,}|={3,}|-{3,}) ?(?:new |nuevas )?(?:system|instructions|instrucciones|"
        r"sistema)\b",
        r"\b(?:end of (?:user )?(?:input|document|context|prompt)|fin del (?:documento|texto|"
        r"contexto))\b[^\n]{0,40}\b(?:new instructions|nuevas instrucciones|system|sistema)\b",
    ),
    _rule(
        "PI-008",
        "jailbreak persona",
        "any",
        ("do anything now", "haz cualquier cosa ahora", "mode", "modo", "jailbr"),
        r"\bdan\b[^\n]{0,60}\b(?:do anything now|haz cualquier cosa ahora)\b",
        r"\b(?:do anything now|haz cualquier cosa ahora)\b[^\n]{0,60}\bdan\b",
        r"\b(?:enable|activate|enter|switch to|you are in|you are now in)\b (?:the )?"
        r"(?:developer|jailbreak|god|unrestricted|dan|evil) mode\b",
        r"\b(?:activa|entra en|cambia al?|estas en) (?:el )?modo (?:desarrollador|dios|"
        r"sin restricciones|sin censura|dan|jailbreak)\b",
        r"\bjailbr(?:oken|eak)\b[^.?!\n]{0,30}\b(?:mode|version|persona|modo|version)\b",
    ),
    _rule(
        "PI-009",
        "safety bypass",
        "en",
        (
            "filter",
            "guardrail",
            "restriction",
            "safeguard",
            "safety",
            "content policy",
            "moderation",
            "ethical",
        ),
        r"\b(?:disable|turn off|bypass|deactivate|remove|ignore|switch off)\b[^.?!\n]{0,15}\byour\b"
        r"[^.?!\n]{0,20}\b(?:filters?|guardrails|restrictions|safeguards|safety|content policy|"
        r"moderation|ethical guidelines)\b",
    ),
    _rule(
        "PI-010",
        "evasion de salvaguardas",
        "es",
        ("filtros", "restricciones", "salvaguardas", "normas", "reglas", "politicas", "limites"),
        r"\b(?:desactiva|elimina|quita|ignora|saltate|apaga|omite)\b[^.?!\n]{0,15}\btus\b"
        r"[^.?!\n]{0,20}\b(?:filtros|restricciones|salvaguardas|normas|reglas|politicas|limites)\b",
    ),
    _rule(
        "PI-011",
        "instructions hidden for the model",
        "any",
        (
            "note",
            "message",
            "instruction",
            "if you are",
            " this",
            "nota",
            "mensaje",
            "instruccion",
            "si eres",
            "que lea",
            "que procese",
            "que resuma",
        ),
        r"\b(?:note|message|instruction)s? (?:to|for) (?:the |any )?(?:ai|assistant|llm|language "
        r"model|chatbot)\b",
        r"\b(?:ai|llm|language model|assistant|chatbot|bot)s? (?:reading|processing|"
        r"summari[sz]ing|parsing|that reads?) this\b",
        r"\b(?:ia|modelo|asistente)s? (?:que (?:lea|procese|resuma)n?) (?:esto|este)\b",
        r"\bif you are an? (?:ai|llm|language model|assistant)(?: reading| processing| "
        r"summari[sz]ing)?\b[^.?!\n]{0,40}\b(?:must|should|ignore|instead|do not|don't)\b",
        r"\b(?:nota|mensaje|instrucciones?) (?:para|a) (?:la |el )?(?:ia|asistente|modelo)\b",
        r"\bsi eres (?:una |un )?(?:ia|modelo de lenguaje|asistente)\b[^.?!\n]{0,40}"
        r"\b(?:debes|tienes que|ignora|en su lugar|no)\b",
    ),
)

RULES_BY_ID = {rule.id: rule for rule in RULES}


def match_rules(folded: str, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Ids of the rules whose pattern occurs in `folded` (see normalize.fold), in rule order."""
    return [rule.id for rule in rules if rule.matches(folded)]
