"""StopMatcher: streamed text never shows a stop sequence or text past it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from demigod.engines.stops import StopMatcher

alphabet = st.sampled_from("ab\nc")


def run(pieces: list[str], stops: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    shown = ""
    for piece in pieces:
        visible, stopped = matcher.feed(piece)
        shown += visible
        if stopped:
            return shown, True
    return shown + matcher.flush(), False


@given(
    st.lists(st.text(alphabet, max_size=4), max_size=12),
    st.lists(st.text(alphabet, min_size=1, max_size=3), max_size=3),
)
def test_output_is_the_text_up_to_the_first_stop(pieces: list[str], stops: list[str]) -> None:
    text = "".join(pieces)
    hits = [i for stop in stops if (i := text.find(stop)) >= 0]
    shown, stopped = run(pieces, stops)
    if hits:
        # the earliest stop that completes while streaming wins; it may start after an
        # earlier-starting but later-completing one, never after its own start
        assert stopped
        assert text.startswith(shown)
        assert any(text[len(shown) :].startswith(stop) for stop in stops)
    else:
        assert (shown, stopped) == (text, False)


def test_partial_stop_is_held_back_until_disproved() -> None:
    matcher = StopMatcher(["\nUser:"])
    assert matcher.feed("Hello\nUs") == ("Hello", False)
    assert matcher.feed("ually") == ("\nUsually", False)
    assert matcher.feed(" fine\nUser: more") == (" fine", True)


def test_no_stops_passes_everything_through() -> None:
    matcher = StopMatcher([])
    assert matcher.feed("abc") == ("abc", False)
    assert matcher.flush() == ""
