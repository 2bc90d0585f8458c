"""The smoke test after a deploy: one chat completion through the gateway (model `auto`,
as a client would send it) and the deep probe (`/healthz/deep`, a generation through every
model). What `demigod ops smoke`, the deploy workflow and the Windmill scripts run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

SMOKE_PROMPT = "Smoke test after a deploy: say hello."
SMOKE_MAX_TOKENS = 8


@dataclass(frozen=True)
class SmokeResult:
    url: str
    chat_status: int | None
    chat_text: str | None
    deep_status: int | None
    deep_models: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.chat_status == 200
            and self.chat_text is not None
            and self.deep_status == 200
            and not self.errors
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": "pass" if self.passed else "fail"}


def smoke_test(url: str, api_key: str | None, timeout: float) -> SmokeResult:
    """Run the smoke test against the gateway at `url`. Never raises: a failure to connect
    is recorded in `errors` and fails the verdict."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    errors: list[str] = []
    chat_status = deep_status = None
    chat_text = None
    deep_models: dict[str, str] = {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as http:
        try:
            chat = http.post(
                "/v1/chat/completions",
                json={
                    "model": "auto",
                    "messages": [{"role": "user", "content": SMOKE_PROMPT}],
                    "max_tokens": SMOKE_MAX_TOKENS,
                    "temperature": 0,
                },
            )
            chat_status = chat.status_code
            if chat.status_code == 200:
                chat_text = chat.json()["choices"][0]["message"]["content"]
            else:
                errors.append(f"chat: HTTP {chat.status_code}: {chat.text[:200]}")
        except (httpx.HTTPError, ValueError, LookupError) as exc:
            errors.append(f"chat: {type(exc).__name__}: {exc}")
        try:
            deep = http.get("/healthz/deep")
            deep_status = deep.status_code
            deep_models = dict(deep.json().get("models", {}))
            if deep.status_code != 200:
                errors.append(f"deep probe: HTTP {deep.status_code}: {deep_models}")
        except (httpx.HTTPError, ValueError) as exc:
            errors.append(f"deep probe: {type(exc).__name__}: {exc}")
    return SmokeResult(url, chat_status, chat_text, deep_status, deep_models, errors)
