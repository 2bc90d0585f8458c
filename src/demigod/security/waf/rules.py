"""The versioned rule set: patterns of known prompt-injection phrasings. English and Spanish
have a rule per technique; French, German, Italian, Portuguese, Dutch, Russian, Chinese,
Japanese and Turkish share two rules for the canonical override and system-prompt
requests (the learned model covers paraphrases).

Each rule has a stable id (`PI-001`) that block responses, logs and the
`demigod_waf_blocked_total{rule}` metric carry. Patterns match the *folded* text
(lower case, no diacritics, digits-for-letters undone, single spaces; see normalize.fold),
so "IGNORÁ  las instrucciónes" and "1gn0re" are covered without spelling variants here.
Add a rule by appending to RULES and bumping RULESET_VERSION.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULESET_VERSION = "2026.12.03-3"


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


# An override is an order: its verb opens a sentence or follows a word that introduces an
# order ("please", "now", "you must"). "Why does my model ignore its system prompt?" is a
# question about the model, not an order to it, and must not match.
_EN_ORDER_AT = (
    r"(?:^|[.?!:;\n\"'(\[*>#-] ?|\b(?:please|now|just|and|so|then|first|simply|also|kindly|"
    r"you (?:must|should|will|shall|need to|have to|are to)|i (?:want|need|order) you to|"
    r"you to)\s)"
)
_ES_ORDER_AT = (
    r"(?:^|[.?!:;\n\"'(\[*>#¿¡-] ?|\b(?:por favor|ahora|y|solo|simplemente|primero|tambien|"
    r"debes|tienes que|vas a|quiero que)\s)"
)
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
        rf"{_EN_ORDER_AT}(?:{_EN_IGNORE})\b[^.?!\n]{{0,40}}\b(?:{_EN_EARLIER})\b[^.?!\n]{{0,25}}"
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
        rf"{_ES_ORDER_AT}(?:{_ES_IGNORE})\b[^.?!\n]{{0,40}}\b(?:{_ES_ORDERS})\b[^.?!\n]{{0,25}}"
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
            "notice",
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
        r"\b(?:note|message|instruction|notice)s? (?:to|for) (?:the |any )?(?:ai|assistant|llm|"
        r"language model|chatbot|agent)\b",
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

# Canonical phrasings in other languages, on folded text (no diacritics: "precedentes";
# Russian й folds to и; Turkish dotless ı stays).
_OTHER_ORDER_AT = (
    r"(?:^|[.?!:;\n\"'(\[*>#«-] ?|\b(?:s'il te plait|bitte|per favore|por favor|alsjeblieft|"
    r"lutfen|пожалуиста|теперь|сеичас|jetzt|maintenant|ora|agora|nu|simdi)\s)"
)
_CJK_ORDER_AT = r"(?:^|[。！？，,.!?:：\n「『\"]|请|請|ください|まず)"
_OTHER_OVERRIDE = (
    # fr
    rf"{_OTHER_ORDER_AT}(?:ignore[rz]?|oublie[rz]?|ne tien[ts] pas compte d[eu']s?)\b"
    r"[^.?!\n]{0,40}"
    r"\b(?:instructions|consignes|regles|directives)\b[^.?!\n]{0,25}"
    r"\b(?:precedentes|anterieures|ci-dessus|initiales|du systeme)",
    # de
    rf"{_OTHER_ORDER_AT}(?:ignoriere|ignorier|vergiss|vergesst|missachte)\b[^.?!\n]{{0,40}}"
    r"\b(?:vorherigen?|bisherigen?|obigen?|vorigen?|alle)\b[^.?!\n]{0,25}"
    r"\b(?:anweisungen|instruktionen|regeln|vorgaben|befehle)",
    # it
    rf"{_OTHER_ORDER_AT}(?:ignora|ignorate|dimentica|dimenticate)\b[^.?!\n]{{0,40}}"
    r"\b(?:istruzioni|regole|indicazioni)\b[^.?!\n]{0,25}"
    r"\b(?:precedenti|di sopra|iniziali|del sistema)",
    # pt
    rf"{_OTHER_ORDER_AT}(?:ignore|ignora|esqueca|esquece|desconsidere)\b[^.?!\n]{{0,40}}"
    r"\b(?:instrucoes|regras|orientacoes)\b[^.?!\n]{0,25}"
    r"\b(?:anteriores|acima|iniciais|do sistema)",
    # nl
    rf"{_OTHER_ORDER_AT}(?:negeer|vergeet)\b[^.?!\n]{{0,30}}\b(?:vorige|eerdere|bovenstaande|alle)\b"
    r"[^.?!\n]{0,20}\b(?:instructies|regels|aanwijzingen|opdrachten)",
    # ru
    rf"{_OTHER_ORDER_AT}(?:игнорируи|проигнорируи|забудь|не обращаи внимания на)[^.?!\n]{{0,40}}"
    r"(?:предыдущие|прежние|все|вышеуказанные|системные)[^.?!\n]{0,25}"
    r"(?:инструкции|указания|правила|команды)",
    # zh
    rf"{_CJK_ORDER_AT}(?:忽略|无视|忘记|忘掉|不要理会)[^。！？\n]{{0,10}}(?:之前|以上|上面|先前|所有|前面)"
    r"[^。！？\n]{0,10}(?:指令|指示|说明|规则|提示)",
    # ja
    r"(?:以前|前|上記|これまで|すべて)の?(?:指示|命令|ルール|設定)[^。！？\n]{0,10}(?:無視|忘れ)",
    # tr
    r"(?:onceki|yukaridaki|tum)[^.?!\n]{0,30}(?:talimatlar|kurallar|yonergeler)[^.?!\n]{0,20}"
    r"(?:unut|yok say|gormezden gel|iptal)",
)
_OTHER_REVEAL = (
    r"\b(?:revele|montre|affiche|donne|repete|ecris)\b[^.?!\n]{0,30}\b(?:ton|tes|votre|vos)\b"
    r"[^.?!\n]{0,15}(?:prompt systeme|prompt du systeme|consignes systeme|message systeme|"
    r"instructions (?:systeme|initiales|cachees))",
    r"\b(?:zeig|zeige|gib|verrate|wiederhole|nenne)\b[^.?!\n]{0,30}\b(?:dein|deine|deinen|ihre)\b"
    r"[^.?!\n]{0,15}(?:systemprompt|system-prompt|systemanweisung|systemnachricht|"
    r"anfangsanweisungen|versteckten anweisungen)",
    r"\b(?:rivela|mostra|mostrami|ripeti|dimmi)\b[^.?!\n]{0,30}\b(?:tuo|tue|tuoi)\b[^.?!\n]{0,15}"
    r"(?:prompt di sistema|messaggio di sistema|istruzioni (?:di sistema|iniziali|nascoste))",
    r"\b(?:revele|mostre|mostra|repita|diga)\b[^.?!\n]{0,30}\b(?:seu|suas|seus|teu|tuas)\b"
    r"[^.?!\n]{0,15}(?:prompt (?:de|do) sistema|mensagem (?:de|do) sistema|"
    r"instrucoes (?:do sistema|iniciais|ocultas))",
    r"\b(?:toon|herhaal|geef)\b[^.?!\n]{0,30}\b(?:je|jouw|uw)\b[^.?!\n]{0,15}"
    r"(?:systeemprompt|systeeminstructies|systeembericht|verborgen instructies)",
    r"(?:покажи|выведи|раскрои|повтори|напиши)[^.?!\n]{0,30}(?:свои|свой|твои|твой|ваш)"
    r"[^.?!\n]{0,15}(?:системныи промпт|системные инструкции|системное сообщение|"
    r"скрытые инструкции)",
    r"(?:输出|显示|告诉我|透露|重复|打印)[^。！？\n]{0,10}(?:系统提示|系统指令|系统消息|初始指令|隐藏指令)",
    r"(?:システムプロンプト|システムメッセージ|初期指示|隠された指示)[^。！？\n]{0,15}"
    r"(?:教えて|表示|出力|見せて|繰り返)",
    r"(?:sistem (?:istemini|mesajini|mesajını|talimatlarini|talimatlarını)|gizli talimatlar)"
    r"[^.?!\n]{0,30}(?:goster|yaz|tekrarla|soyle|sizdir)",
)

RULES += (
    _rule(
        "PI-012",
        "ignore previous instructions (fr de it pt nl ru zh ja tr)",
        "any",
        (
            "ignor",
            "oubli",
            "tien",
            "vergi",
            "vergess",
            "missacht",
            "dimentic",
            "esquec",
            "desconsider",
            "negeer",
            "vergeet",
            "игнор",
            "забудь",
            "не обращаи",
            "忽略",
            "无视",
            "忘",
            "不要理会",
            "無視",
            "unut",
            "yok say",
            "gormezden",
            "iptal",
        ),
        *_OTHER_OVERRIDE,
    ),
    _rule(
        "PI-013",
        "reveal the system prompt (fr de it pt nl ru zh ja tr)",
        "any",
        (
            "systeme",
            "system",
            "sistema",
            "systeem",
            "системн",
            "скрыт",
            "系统",
            "指令",
            "システム",
            "指示",
            "sistem",
            "gizli",
        ),
        *_OTHER_REVEAL,
    ),
)

# Data leaving through a rendered link or image: a markdown link/image whose URL carries a
# query parameter, and an order to fill it with the conversation, a secret or user data.
_EXFIL_URL = r"!?\[[^\]\n]{0,80}\]\(\s*https?://[^)\s]{1,200}[?&][\w.-]{1,30}="
_EXFIL_WHAT = (
    r"(?:conversation|chat|history|messages?|summary|password|secret|api key|token|e-?mail|"
    r"conversacion|historial|contrasena|resume|mot de passe|gesprach|passwort|conversazione|"
    r"conversa|senha|gesprek|wachtwoord|разговор|переписк|пароль|对话|密码|会話|パスワード)"
)
_EXFIL_ORDER = (
    r"(?:append|add|include|attach|insert|fill|replace|followed by|encode|anade|agrega|incluye|"
    r"seguid[oa] de|ajoute|suivie? de|fuge|gefolgt|aggiungi|seguit[oa] da|acrescente|inclua|"
    r"voeg|gevolgd|добав|接上|附上|加上|続け|付け)"
)

RULES += (
    _rule(
        "PI-014",
        "data exfiltration through a link or image",
        "any",
        ("](http",),
        rf"{_EXFIL_ORDER}[^\n]{{0,160}}{_EXFIL_URL}[^\n]{{0,160}}{_EXFIL_WHAT}",
        rf"{_EXFIL_URL}[^\n]{{0,160}}{_EXFIL_ORDER}[^\n]{{0,80}}{_EXFIL_WHAT}",
        rf"{_EXFIL_ORDER}[^\n]{{0,80}}{_EXFIL_WHAT}[^\n]{{0,160}}{_EXFIL_URL}",
    ),
    _rule(
        "PI-015",
        "encoded instructions to decode and follow",
        "any",
        ("decod", "dekod", "base64"),
        r"\b(?:decode|decrypt|dekodiere|decodifica|decodifique|decode[rz]?)\b[^.?!\n]{0,40}"
        r"\b(?:and|then|y|et|und|e|en) (?:do|follow|execute|run|obey|haz|sigue|ejecuta|fais|suis|"
        r"execute|befolge|fuhre|segui|esegui|siga|volg|voer)\b",
    ),
)

# Round two: the same three attacks in fifteen languages, phrased without the "previous"
# or "system" that PI-001..013 need — "forget your instructions", "from now on you have no
# restrictions", "show me your hidden instructions" — and Arabic, Korean, Hindi and Polish.
_YOUR_ORDERS_OVERRIDE = (
    # Not "the rules" (a document's own) nor reported speech ("if a user asks you to ...").
    r"(?<!asks )(?<!asked )(?<!tells )(?<!told )(?<!wants )"
    rf"{_EN_ORDER_AT}(?:ignore|disregard|forget|override|bypass|discard)\b (?:all (?:of )?(?:your "
    r"|ur )?|any (?:of )?(?:your )?|your |ur )(?:(?!(?:previous|prior|above|earlier|"
    r"preceding|initial|original|system|the|these|those)\b)\w+ )?(?:instructions|rules|guidelines|"
    r"directives|programming|guardrails|restrictions|system prompt)\b",
    # "ignore all the instructions you got before": the instructions given to the AI.
    rf"{_EN_ORDER_AT}(?:ignore|disregard|forget|override|bypass|discard)\b all (?:of )?the "
    r"(?:instructions|directives|guidelines) (?:you(?:'ve| have)? (?:got|received|were given|"
    r"been given)|given to you)\b",
    rf"{_ES_ORDER_AT}(?:ignora|ignore|olvida|olvide|olvidate de|descarta)\b (?:todas (?:tus |las |"
    r"sus )?|tus |sus )(?:instrucciones|reglas|normas|directrices|restricciones)\b",
    rf"{_OTHER_ORDER_AT}(?:oublie[rz]?|ignore[rz]?)\b (?:toutes (?:tes |vos |les )|tes |vos )"
    r"(?:instructions|consignes|regles|directives|restrictions)\b",
    rf"{_OTHER_ORDER_AT}(?:vergiss|vergesst|ignoriere|ignorier|missachte)\b (?:alle (?:deine |"
    r"ihre |eure |die )?|deine |ihre |eure )(?:anweisungen|regeln|vorgaben|richtlinien|"
    r"einschrankungen)\b",
    rf"{_OTHER_ORDER_AT}(?:dimentica|dimenticate|ignora|ignorate)\b (?:tutte (?:le tue |le )?|"
    r"le tue )"
    r"(?:istruzioni|regole|direttive|restrizioni)\b",
    rf"{_OTHER_ORDER_AT}(?:esqueca|esquece|ignore|ignora|desconsidere)\b (?:todas (?:as suas |"
    r"as tuas |as )?|as suas |suas |as tuas |tuas )(?:instrucoes|regras|diretrizes|restricoes)\b",
    rf"{_OTHER_ORDER_AT}(?:vergeet|negeer)\b (?:al (?:je |jouw |uw |de )?|alle |je |jouw |uw )"
    r"(?:instructies|"
    r"regels|richtlijnen|beperkingen)\b",
    r"(?:^|[.?!:;\n\"'(] ?|\b(?:prosze|teraz)\s)(?:zapomnij|zignoruj|ignoruj)\b (?:o )?"
    r"(?:(?:wszystkie |wszystkich )(?:swoje |twoje |swoich |twoich |poprzednie |wczesniejsze )?"
    r"|(?:swoje |twoje |swoich |twoich |poprzednie |wczesniejsze ))(?:instrukcj|"
    r"polecen|zasad|regu[lł])",
    # Your instructions (talimatlarını), or all of them; not "the rules" of a document.
    r"(?:(?:talimatlar|kurallar|yonergeler)[iı]n|(?:tum|butun) (?:talimat|kural|yonerge))\w*"
    r"[^.?!\n]{0,25}(?:unut|yok say|gormezden gel)",
    r"(?:забудь|игнорируи|проигнорируи)[^.?!\n]{0,15}(?:свои |твои |ваши |все |всё )[^.?!\n]{0,10}"
    r"(?:инструкции|указания|правила|ограничения)",
    r"(?:忽略|无视|忘记|忘掉)[^。！？\n]{0,8}(?:指令|指示|规则|设定|提示词|限制)",
    # Instructions, rules, orders: not a manual's settings (設定, 설정) or limits.
    r"(?:指示|命令|ルール)[はをもの]?[^。！？\n]{0,8}(?:無視|忘れ)",
    r"(?:지시|지침|규칙|명령)[^.?!\n]{0,12}(?:무시|잊어|잊으)",
    # Your instructions (تعليماتك), all or the previous ones; not "the old instructions".
    r"(?:تجاهل|انس|تناس)\S*[^.?!\n،]{0,30}(?:(?:تعليمات|قواعد|أوامر|إرشادات)(?:ك|كم)\b|(?:جميع|كل) "
    r"(?:التعليمات|القواعد|الأوامر)|(?:التعليمات|القواعد|الأوامر) السابقة)",
    r"(?:अपने|अपनी|सारे|सभी|पिछले|तुम्हारे|आपके) (?:सारे |सभी )?(?:निर्देश|नियम|हिदायत)[^।.?!\n]{0,30}"
    r"(?:भूल जा|अनदेखा कर|नज\u093c?रअंदाज\u093c? कर)",
    r"(?:भूल जा|अनदेखा कर|नज\u093c?रअंदाज\u093c? कर)[^।.?!\n]{0,30}(?:अपने|अपनी|सारे|सभी|पिछले|"
    r"तुम्हारे|आपके) (?:सारे |सभी )?(?:निर्देश|नियम)",
)
_NOW_UNRESTRICTED = (
    r"\b(?:from now on|henceforth|starting now|now)\b,? you (?:have|will have|'ve got|are) "
    r"(?:now )?(?:no (?:restrictions|limits|rules|filters|guidelines|ethical)|unrestricted|"
    r"uncensored|unfiltered|free of (?:all )?(?:rules|restrictions))",
    r"\b(?:ahora|a partir de ahora|desde ahora)\b[^.?!\n]{0,25}\b(?:no tienes|sin) (?:ninguna |"
    r"ningun )?(?:restricciones|restriccion|limites|reglas|filtros|censura)\b",
    r"\b(?:desormais|maintenant|a partir de maintenant|dorenavant)\b[^.?!\n]{0,30}"
    r"\b(?:sans (?:aucune |aucun )?(?:restriction|limite|regle|filtre|censure)|"
    r"aucune restriction|n'as plus de (?:regles|limites|restrictions))",
    r"\b(?:ab jetzt|jetzt|ab sofort|von nun an)\b[^.?!\n]{0,30}\b(?:uneingeschrankt|unzensiert|"
    r"keine (?:einschrankungen|regeln|grenzen|filter|richtlinien)|ohne (?:einschrankungen|"
    r"regeln|filter|grenzen))",
    r"\b(?:ora|d'ora in poi|da ora|da adesso)\b[^.?!\n]{0,30}\b(?:senza (?:alcuna |alcun )?"
    r"(?:restrizion|limit|regol|filtr|censur)|nessuna restrizione|non hai (?:piu )?(?:regole|"
    r"limiti|restrizioni))",
    r"\b(?:agora|a partir de agora|de agora em diante)\b[^.?!\n]{0,30}\b(?:sem (?:nenhuma |"
    r"nenhum |qualquer )?(?:restric|limit|regra|filtro|censura)|nenhuma restricao|nao tem "
    r"(?:mais )?(?:regras|limites|restricoes))",
    r"\b(?:vanaf nu|voortaan|nu)\b[^.?!\n]{0,30}\b(?:geen (?:beperkingen|regels|filters|grenzen)|"
    r"zonder (?:beperkingen|regels|filters|censuur))",
    r"\b(?:od teraz|od tej chwili|teraz)\b[^.?!\n]{0,30}(?:bez (?:zadnych |jakichkolwiek )?"
    r"(?:ograniczen|zasad|filtrow|cenzury)|nie masz (?:zadnych )?(?:ograniczen|zasad))",
    r"\b(?:art[iı]k|bundan sonra|simdi)\b[^.?!\n]{0,40}(?:k[iı]s[iı]tlama|s[iı]n[iı]r|kural|"
    r"filtre)\w*[^.?!\n]{0,15}(?:yok|olmadan|s[iı]z)",
    r"(?:теперь|отныне|с этого момента)[^.?!\n]{0,30}(?:без (?:каких-либо |всяких |любых )?"
    r"(?:ограничении|правил|фильтров|цензуры)|нет (?:никаких )?(?:ограничении|правил))",
    r"(?:现在|从现在起|从现在开始|今后|從現在|現在)[^。！？\n]{0,15}(?:没有任何|没有|沒有|不受任何|不受|无|無)"
    r"(?:限制|规则|约束|过滤)",
    r"(?:今から|これから|今後)[^。！？\n]{0,20}(?:制限|ルール|フィルター)[はがも]?(?:一切|全く)?"
    r"(?:ない|なし|無し|ありません)",
    r"(?:이제|지금부터|이제부터)[^.?!\n]{0,20}(?:제한|규칙|필터)[이은는도]? ?(?:전혀 )?없",
    r"(?:الآن|من الآن)[^.?!\n]{0,30}(?:بلا|بدون|دون|ليس لديك) (?:أي )?(?:قيود|قواعد|حدود|"
    r"فلاتر|رقابة)",
    r"(?:अब से|अब)[^।.?!\n]{0,30}(?:कोई (?:भी )?(?:प्रतिबंध|नियम|पाबंदी|सीमा) नहीं|बिना किसी "
    r"(?:प्रतिबंध|नियम|पाबंदी|सीमा))",
)
_SHOW_HIDDEN = (
    r"\b(?:pokaz|wypisz|ujawnij|powtorz|podaj|wyswietl|zdradz)\w*\b[^.?!\n]{0,30}(?:swoj|twoj)"
    r"\w*[^.?!\n]{0,15}(?:prompt systemow|wiadomosc systemow|instrukcje systemow|ukryte "
    r"instrukcje|poczatkowe instrukcje)",
    r"(?:اعرض|أظهر|اكشف|اطبع|كرر|أخبرني|أعطني|انسخ)[^.?!\n]{0,30}(?:موجه النظام|رسالة النظام|"
    r"تعليمات النظام|تعليماتك المخفية|التعليمات المخفية|تعليماتك الأولية|التعليمات الأولية)",
    r"(?:시스템 프롬프트|시스템 메시지|숨겨진 지시|초기 지시|숨겨진 프롬프트)[^.?!\n]{0,20}"
    r"(?:보여 ?줘|출력해|알려 ?줘|공개해|말해 ?줘|반복해|적어 ?줘)",
    r"(?:सिस्टम प्रॉम्प्ट|सिस्टम संदेश|सिस्टम मैसेज|छिपे हुए निर्देश|छिपे निर्देश|शुरुआती निर्देश)"
    r"[^।.?!\n]{0,30}(?:दिखाओ|दिखाइए|बताओ|बताइए|प्रिंट करो|लिखो|दोहराओ)",
    r"\b(?:output|print|reveal|show|repeat|dump|echo|leak|paste)\b[^.?!\n]{0,25}\b(?:everything|"
    r"all|the text|the contents?) (?:in|of) your (?:context window|context|instructions|"
    r"system message|configuration)",
)

RULES += (
    _rule(
        "PI-016",
        "ignore your instructions (fifteen languages)",
        "any",
        (
            "ignor",
            "disregard",
            "forget",
            "overrid",
            "bypass",
            "discard",
            "olvid",
            "descarta",
            "oubli",
            "vergiss",
            "vergesst",
            "missacht",
            "dimentic",
            "esquec",
            "desconsider",
            "vergeet",
            "negeer",
            "zapomnij",
            "unut",
            "yok say",
            "gormezden",
            "забудь",
            "игнор",
            "忽略",
            "无视",
            "忘",
            "無視",
            "무시",
            "잊",
            "تجاهل",
            "انس",
            "تناس",
            "भूल",
            "अनदेखा",
            "रअंदाज",
        ),
        *_YOUR_ORDERS_OVERRIDE,
    ),
    _rule(
        "PI-017",
        "from now on without restrictions (fifteen languages)",
        "any",
        (
            "now",
            "henceforth",
            "ahora",
            "desormais",
            "maintenant",
            "dorenavant",
            "jetzt",
            "von nun an",
            "ora",
            "agora",
            "vanaf nu",
            "voortaan",
            "nu",
            "teraz",
            "od tej chwili",
            "art",
            "bundan sonra",
            "simdi",
            "теперь",
            "отныне",
            "с этого момента",
            "现在",
            "今后",
            "現在",
            "今から",
            "これから",
            "今後",
            "이제",
            "지금부터",
            "الآن",
            "अब",
        ),
        *_NOW_UNRESTRICTED,
    ),
    _rule(
        "PI-018",
        "show the hidden or system instructions (pl ar ko hi, context window)",
        "any",
        (
            "pokaz",
            "wypisz",
            "ujawnij",
            "powtorz",
            "podaj",
            "wyswietl",
            "zdradz",
            "اعرض",
            "أظهر",
            "اكشف",
            "اطبع",
            "كرر",
            "أخبرني",
            "أعطني",
            "انسخ",
            "시스템",
            "숨겨진",
            "초기",
            "सिस्टम",
            "छिपे",
            "शुरुआती",
            "output",
            "print",
            "reveal",
            "show",
            "repeat",
            "dump",
            "echo",
            "leak",
            "paste",
        ),
        *_SHOW_HIDDEN,
    ),
)

RULES_BY_ID = {rule.id: rule for rule in RULES}


def match_rules(folded: str, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Ids of the rules whose pattern occurs in `folded` (see normalize.fold), in rule order."""
    return [rule.id for rule in rules if rule.matches(folded)]
