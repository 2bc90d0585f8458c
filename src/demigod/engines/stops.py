"""Stop sequences over a stream of text: never emit text that may turn out to be a stop."""

from __future__ import annotations


class StopMatcher:
    """Feed decoded text; get back what is safe to show and whether a stop was hit.

    Text that could be the start of a stop sequence is held back until the next piece
    proves otherwise, so a streamed reply never shows part of a stop string.
    """

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (visible text, stopped). After a stop, the caller must stop feeding."""
        buffer = self._pending + text
        hit = min((index for stop in self._stops if (index := buffer.find(stop)) >= 0), default=-1)
        if hit >= 0:
            self._pending = ""
            return buffer[:hit], True
        keep = partial_match(buffer, self._stops)
        self._pending = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        """The held-back text, once the stream ends without a stop."""
        pending, self._pending = self._pending, ""
        return pending


def partial_match(buffer: str, markers: tuple[str, ...]) -> int:
    """How many characters at the end of `buffer` may be the start of one of `markers`:
    the text to hold back until the next piece shows whether the marker follows."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(buffer)), longest, -1):
            if buffer.endswith(marker[:size]):
                longest = size
                break
    return longest
