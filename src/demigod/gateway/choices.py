"""One choice of an answer, built from its engine events: text, tool calls, logprobs.

A `ChoiceBuilder` reads the events of one generated sequence and gives the protocol's
pieces: a whole `ChatChoice`/`CompletionChoice`, or, when streaming, the choice of each
chunk. Tool calls are read out of the text in the model's syntax (engines.tool_calls);
while streaming, content is shown up to a call's opening markup and the call is sent
whole, as one delta, when the sequence ends.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Literal

from demigod.engines.base import GenerationEvent, TokenLogprob
from demigod.engines.tool_calls import ParsedCall, ToolCallStream, new_call_id, parse_calls
from demigod.gateway.output_plan import OutputPlan
from demigod.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatDelta,
    ChatTokenLogprob,
    ChoiceLogprobs,
    CompletionChoice,
    CompletionLogprobs,
    FinishReason,
    FunctionCall,
    FunctionCallDelta,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
)

Kind = Literal["chat", "text"]


class ChoiceBuilder:
    """The choice `index` of an answer, from the events of its sequence. `echo_text` is
    the prompt a text completion echoes before its own text."""

    def __init__(self, index: int, plan: OutputPlan, *, echo_text: str = "") -> None:
        self.index = index
        self._plan = plan
        self._echo_text = echo_text
        self._parts: list[str] = []
        self._logprobs: list[TokenLogprob] = []
        self._prompt_logprobs: list[TokenLogprob] = []
        self._streamed_calls = (
            ToolCallStream(plan.tool_syntax) if plan.tool_syntax is not None else None
        )
        self._offsets = _TextOffsets()
        self._echo_sent = False  # streamed: the echo goes out with the first piece
        self.completion_tokens = 0
        self.finish_reason: FinishReason | None = None

    def add(self, event: GenerationEvent) -> None:
        """Take one event of the sequence (non-streamed answers)."""
        self._take(event)
        self._parts.append(event.text)

    # -- whole choices -------------------------------------------------------------

    def chat_choice(self) -> ChatChoice:
        text = "".join(self._parts)
        calls: list[ParsedCall] = []
        if self._plan.tool_syntax is not None:
            text, calls = parse_calls(text, self._plan.tool_syntax)
        message = AssistantMessage(
            content=(text.strip() or None) if calls else text,
            tool_calls=[_tool_call(call) for call in calls] or None,
        )
        return ChatChoice(
            index=self.index,
            message=message,
            finish_reason="tool_calls" if calls else self.finish_reason or "length",
            logprobs=self._chat_logprobs(self._logprobs),
        )

    def completion_choice(self) -> CompletionChoice:
        return CompletionChoice(
            index=self.index,
            text=self._echo_text + "".join(self._parts),
            finish_reason=self.finish_reason or "length",
            logprobs=self._completion_logprobs(self._prompt_logprobs + self._logprobs),
        )

    # -- streamed pieces -------------------------------------------------------------

    def chat_opening(self) -> ChatChunkChoice:
        return ChatChunkChoice(index=self.index, delta=ChatDelta(role="assistant", content=""))

    def chat_piece(self, event: GenerationEvent) -> ChatChunkChoice | None:
        """The chunk choice for `event`, or None when it has nothing to send yet."""
        self._take(event)
        text = event.text
        if self._streamed_calls is not None:
            text = self._streamed_calls.feed(text)
        calls: list[ParsedCall] = []
        if event.finish_reason is not None and self._streamed_calls is not None:
            rest, calls = self._streamed_calls.finish()
            text += rest
        logprobs = self._chat_logprobs(list(event.logprobs))
        if not text and not calls and event.finish_reason is None and not event.logprobs:
            return None
        delta = ChatDelta(
            content=text or None,
            tool_calls=[
                ToolCallDelta(
                    index=position,
                    id=new_call_id(),
                    type="function",
                    function=FunctionCallDelta(name=call.name, arguments=call.arguments),
                )
                for position, call in enumerate(calls)
            ]
            or None,
        )
        finish = "tool_calls" if calls else event.finish_reason
        return ChatChunkChoice(
            index=self.index, delta=delta, finish_reason=finish, logprobs=logprobs
        )

    def text_piece(self, event: GenerationEvent) -> CompletionChoice | None:
        """The streamed text-completion choice for `event` (the echo, with the prompt's
        logprobs, goes out with the first), or None when it has nothing to send."""
        self._take(event)
        echo, self._echo_sent = ("" if self._echo_sent else self._echo_text), True
        text = echo + event.text
        entries = list(event.prompt_logprobs or ()) + list(event.logprobs)
        if not text and event.finish_reason is None and not entries:
            return None
        return CompletionChoice(
            index=self.index,
            text=text,
            finish_reason=event.finish_reason,
            logprobs=self._completion_logprobs(entries),
        )

    # -- helpers ----------------------------------------------------------------------

    def _take(self, event: GenerationEvent) -> None:
        self.completion_tokens = event.completion_tokens
        self.finish_reason = event.finish_reason or self.finish_reason
        self._logprobs.extend(event.logprobs)
        if event.prompt_logprobs is not None:
            self._prompt_logprobs = list(event.prompt_logprobs)

    def _chat_logprobs(self, entries: Sequence[TokenLogprob]) -> ChoiceLogprobs | None:
        if self._plan.logprobs is None:
            return None
        return ChoiceLogprobs(
            content=[
                ChatTokenLogprob(
                    token=_token_text(entry.piece),
                    logprob=entry.logprob if entry.logprob is not None else 0.0,
                    bytes=list(entry.piece),
                    top_logprobs=[
                        TopLogprob(
                            token=_token_text(top.piece),
                            logprob=top.logprob if top.logprob is not None else 0.0,
                            bytes=list(top.piece),
                        )
                        for top in entry.top
                    ],
                )
                for entry in entries
            ]
        )

    def _completion_logprobs(self, entries: Sequence[TokenLogprob]) -> CompletionLogprobs | None:
        if self._plan.logprobs is None:
            return None
        return CompletionLogprobs(
            tokens=[_token_text(entry.piece) for entry in entries],
            token_logprobs=[entry.logprob for entry in entries],
            top_logprobs=[
                None if entry.logprob is None else _top_dict(entry.top) for entry in entries
            ],
            text_offset=[self._offsets.next(entry.piece) for entry in entries],
        )


class _TextOffsets:
    """Where each token starts in the choice's text (characters), token after token; a
    token holding part of a character starts where that character does."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._length = 0

    def next(self, piece: bytes) -> int:
        start = self._length
        self._length += len(self._decoder.decode(piece))
        return start


def _token_text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def _top_dict(top: Sequence[TokenLogprob]) -> dict[str, float]:
    found: dict[str, float] = {}
    for entry in top:  # likeliest first: a text two tokens share keeps the likelier
        found.setdefault(_token_text(entry.piece), entry.logprob or 0.0)
    return found


def _tool_call(call: ParsedCall) -> ToolCall:
    return ToolCall(
        id=new_call_id(), function=FunctionCall(name=call.name, arguments=call.arguments)
    )
