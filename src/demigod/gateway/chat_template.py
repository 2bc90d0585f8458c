"""Chat messages → prompt text: the GGUF's own Jinja template, or a documented default.

The default (for models that ship no template, such as the demo models) is plain text:

    System: {system message}
    User: {user message}
    Assistant: {assistant message}
    ...
    Assistant:

and generation also stops at a new line starting "User:", so a base model does not write
the user's next turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from demigod.protocol import ChatMessage

# A reply the model wrote after "Assistant:" starts with its own space; rendering it without
# a second one gives back the exact text (and tokens) the model produced, so the next turn's
# prompt extends the saved recurrent state of this one (demigod.engines.state_cache).
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message.role | capitalize }}:"
    "{{ '' if message.content[:1] in (' ', '\n') else ' ' }}{{ message.content }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
DEFAULT_STOPS = ("\nUser:",)


class ChatTemplateError(ValueError):
    """The model's template cannot render these messages."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.is_default = source is None
        self.stops = DEFAULT_STOPS if source is None else ()
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise_exception
        self._template = environment.from_string(source or DEFAULT_TEMPLATE)
        self._bos_token = bos_token
        self._eos_token = eos_token

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt for `messages`, ending where the assistant's reply starts.

        Raises ChatTemplateError when the template rejects the conversation.
        """
        items = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in messages
        ]
        try:
            return self._template.render(
                messages=items,
                add_generation_prompt=True,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
            )
        except TemplateError as exc:
            raise ChatTemplateError(f"chat template failed: {exc}") from exc
