"""Round-two request-classifier prompts the team wrote in fifteen languages
(written/route_LANG.txt: sections code, math, chat; one prompt a line), and long pasted
documents (built from the screen's written paragraphs) as long_context validation.
Training and validation only: the test sets are frozen elsewhere.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from written_waf import LANGUAGES, LICENCE, WRITTEN, line_split, parse_pieces

# A long_context prompt: a question, then pasted paragraphs until it is about this many
# tokens (a user would need a long context window for it).
LONG_CONTEXT_TOKENS = 3000
QUESTIONS = {
    "en": "Here is the full document. Which decisions were taken, and by whom?",
    "es": "Aquí está el documento completo. ¿Qué decisiones se tomaron y quién las tomó?",
    "fr": "Voici le document complet. Quelles décisions ont été prises, et par qui ?",
    "de": "Hier ist das ganze Dokument. Welche Entscheidungen wurden getroffen und von wem?",
    "it": "Ecco il documento completo. Quali decisioni sono state prese e da chi?",
    "pt": "Aqui está o documento completo. Que decisões foram tomadas e por quem?",
    "nl": "Hier is het volledige document. Welke besluiten zijn genomen, en door wie?",
    "ru": "Вот весь документ. Какие решения были приняты и кем?",
    "zh": "以下是完整文件。做出了哪些决定？由谁做出？",
    "ja": "以下が文書の全文です。どんな決定が、誰によってなされましたか？",
    "ar": "إليك المستند كاملًا. ما القرارات التي اتُّخذت ومن اتخذها؟",
    "ko": "다음은 문서 전체입니다. 어떤 결정이 누구에 의해 내려졌나요?",
    "tr": "Belgenin tamamı aşağıda. Hangi kararlar alındı ve kim tarafından?",
    "hi": "यह पूरा दस्तावेज़ है। कौन-कौन से फ़ैसले लिए गए, और किसने लिए?",
    "pl": "Oto cały dokument. Jakie decyzje podjęto i kto je podjął?",
}


def parse_prompts(lang: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in (WRITTEN / f"route_{lang}.txt").read_text("utf-8").splitlines():
        if line.startswith("# "):
            current = line[2:].strip()
            sections[current] = []
        elif line.strip():
            sections[current].append(line.strip())
    return sections


def row(prompt: str, category: str, lang: str, family: str, split: str) -> dict[str, str]:
    return {"prompt": prompt, "category": category, "lang": lang, "source": "team:written",
            "family": family, "licence": LICENCE, "split": split}  # fmt: skip


def rough_tokens(text: str) -> int:
    """About one token per 4 Latin characters, per CJK character, per 2 other letters."""
    cjk = sum("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in text)
    other = sum(c.isalpha() and not c.isascii() for c in text) - cjk
    return cjk + other // 2 + (len(text) - cjk - other) // 4


def compose(seed: int = 16) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    for lang in LANGUAGES:
        for category, prompts in parse_prompts(lang).items():
            for index, prompt in enumerate(prompts):
                family = f"written-route:{category}/{index}"
                yield row(prompt, category, lang, family, line_split(index))
        paragraphs = parse_pieces(lang)["benign paragraph"]
        for count in range(2):
            parts = [QUESTIONS[lang]]
            while rough_tokens("\n\n".join(parts)) < LONG_CONTEXT_TOKENS:
                parts.append(rng.choice(paragraphs))
            yield row("\n\n".join(parts), "long_context", lang,
                      f"written-route:long_context/{lang}/{count}", "validation")  # fmt: skip
