"""What a function may set as a header: nothing aiohttp would refuse to send, refused when set."""

from __future__ import annotations

import pytest

from isr.runtime.api import check_header


@pytest.mark.parametrize("value", ["/a\r\nX-Injected: 1", "/a\nb", "/a\0", "/a\x0bb", "\x1b[31mred", "/a\x7f"])
def test_a_value_with_a_line_break_or_control_character_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        check_header("Location", value)


@pytest.mark.parametrize("name", ["", "X:Y", "X Y", "X\tY", "X\x01"])
def test_a_name_that_is_no_token_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_header(name, "v")


def test_tabs_and_text_beyond_ascii_are_values_like_any() -> None:
    check_header("X-Note", "a\tb caf\u00e9")
    check_header("Location", "/caf\u00e9?q=1")
