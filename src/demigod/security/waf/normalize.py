"""Normalisation before screening: what an attacker does to hide words from a pattern.

Unicode NFKC (full-width and ligature forms), zero-width and bidi control characters
removed, Cyrillic and Greek lookalike letters folded to Latin, and for the rules also
case and diacritics folded ("Instrucción" -> "instruccion") and whitespace collapsed.
Base64 and hex spans are decoded so their text can be screened as well.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

# Zero-width characters, soft hyphen, word joiners and the bidi embedding/override/isolate
# controls: invisible in a rendered prompt, they split words so patterns do not match.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\U000e0000-\U000e007f]"
)

# Lookalikes of Latin letters in Cyrillic, Greek and Armenian (escaped: they look Latin),
# and the Latin letter each one folds to, position by position.
LOOKALIKES = (
    "\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0455"
    "\u0456\u0457\u0458\u0501\u051b\u051d\u04bb\u0261\u04cf\u0578\u057d\u0410\u0412\u0415"
    "\u0401\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u0405\u0406\u0407\u0408"
    "\u0500\u051a\u051c\u04ba\u04c0\u03b1\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5"
    "\u03c7\u03b3\u03f2\u03f3\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f"
    "\u03a1\u03a4\u03a5\u03a7"
)
LATIN = "abeekmhopctyxsiijdqwhglnuABEEKMHOPCTYXSIIJDQWHIaeikvoptuxycjABEZHIKMNOPTYX"
_HOMOGLYPH_TABLE = str.maketrans(LOOKALIKES, LATIN)
# Only words that mix Latin letters with lookalikes are folded ("іgnоrе"): Russian or
# Greek text itself stays as written, so its own words and rules still read it.
_MIXED_WORD = re.compile(rf"\w*[{LOOKALIKES}]\w*")
_LATIN_LETTER = re.compile(r"[A-Za-z]")

# Digits and symbols used as letters ("1gn0re prev10us 1nstruct10ns"), for the rules only.
_LEET_CHARS = "013457@$"
_LEET_TABLE = str.maketrans(_LEET_CHARS, "oieastas")
_LEET_HINT = re.compile(r"[a-z][0-9@$]|[0-9@$][a-z]")  # a letter beside a digit: worth a look
_TOKEN = re.compile(r"[\w@$]+")
_COMBINING = re.compile("[\u0300-\u036f]")
# Letters spaced apart to dodge word patterns ("i g n o r e"): three or more single
# characters separated by single spaces are joined back into a word.
_SPACED_LETTERS = re.compile(r"(?<!\S)(?:\w ){2,}\w(?!\S)")
_SPACES = re.compile(r"\s+")

# Encoded spans are whitespace-separated tokens of 24+ characters (shorter ones are not
# worth decoding): base64 (standard or URL-safe), or hex bytes, optionally `\x`/`0x` each.
MIN_ENCODED_CHARS = 24
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_HEX = re.compile(r"(?:(?:\\x|0x)?[0-9a-fA-F]{2})+")
# Anything outside the base64 and hex alphabets ends a candidate span (one pass in C).
_NOT_ENCODED = re.compile(r"[^A-Za-z0-9+/=_\\-]+")
MAX_DECODED_SPANS = 8


def clean(text: str) -> str:
    """NFKC, invisible characters removed, spaced-out letters joined, lookalike letters in
    Latin words folded: the text the model reads."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACED_LETTERS.sub(lambda m: m.group().replace(" ", ""), text)
    if text.isascii():
        return text
    return _MIXED_WORD.sub(_fold_mixed, text)


def _fold_mixed(match: re.Match[str]) -> str:
    word = match.group()
    return word.translate(_HOMOGLYPH_TABLE) if _LATIN_LETTER.search(word) else word


def fold(cleaned: str) -> str:
    """Case, diacritics, digit-for-letter swaps and whitespace folded: the text rules match."""
    text = cleaned.casefold()
    if not text.isascii():
        # Latin diacritics go; other scripts' marks (Japanese voicing) recompose.
        text = unicodedata.normalize("NFC", _COMBINING.sub("", unicodedata.normalize("NFKD", text)))
    if _LEET_HINT.search(text):
        text = _TOKEN.sub(_unleet, text)
    return _SPACES.sub(" ", text)


def _unleet(match: re.Match[str]) -> str:
    token = match.group()
    if any(c.isalpha() for c in token) and any(c in _LEET_CHARS for c in token):
        return token.translate(_LEET_TABLE)
    return token


def _readable(raw: bytes) -> str | None:
    """`raw` as text when it is mostly printable UTF-8, else None (random binary)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch.isspace() for ch in text)
    mostly_printable = text and printable / len(text) >= 0.9
    return text if mostly_printable and any(c.isalpha() for c in text) else None


def decoded_spans(text: str) -> list[str]:
    """The readable text hidden in base64 and hex spans of `text` (at most a few)."""
    found: list[str] = []
    for token in _NOT_ENCODED.split(text):
        if len(token) < MIN_ENCODED_CHARS:
            continue
        raw = _decode_hex(token) if _HEX.fullmatch(token) else _decode_base64(token)
        if raw is not None and (decoded := _readable(raw)) is not None:
            found.append(decoded)
            if len(found) >= MAX_DECODED_SPANS:
                break
    return found


def _decode_hex(token: str) -> bytes | None:
    try:
        return bytes.fromhex(token.replace("\\x", "").replace("0x", ""))
    except ValueError:
        return None


def _decode_base64(token: str) -> bytes | None:
    if not _BASE64.fullmatch(token):
        return None
    span = token.rstrip("=")
    span += "=" * (-len(span) % 4)
    try:
        return base64.b64decode(span.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
