"""The sign-in session: signed with a key derived from the token, expiring, never the token."""

import time

from isr.http.session import SESSION_S, Sessions

TOKEN = "s3cret-token"
NOW = 1_800_000_000.0


def test_a_session_is_valid_until_it_expires() -> None:
    sessions = Sessions(TOKEN)
    value = sessions.issue(NOW)
    assert sessions.valid(value, NOW) and sessions.valid(value, NOW + SESSION_S - 1)
    assert not sessions.valid(value, NOW + SESSION_S)


def test_a_session_is_not_the_token_and_each_is_new() -> None:
    sessions = Sessions(TOKEN)
    first, second = sessions.issue(NOW), sessions.issue(NOW)
    assert TOKEN not in first and first != second


def test_every_process_with_the_token_accepts_it() -> None:
    """`--workers N`: another process (another Sessions with the same token) validates it."""
    assert Sessions(TOKEN).valid(Sessions(TOKEN).issue(NOW), NOW)


def test_a_new_token_ends_every_session() -> None:
    assert not Sessions("another-token").valid(Sessions(TOKEN).issue(NOW), NOW)


def test_a_tampered_session_is_refused() -> None:
    sessions = Sessions(TOKEN)
    value = sessions.issue(NOW)
    expiry, nonce, mac = value.split(".")
    later = f"{int(expiry) + 3600}.{nonce}.{mac}"
    flipped = f"{expiry}.{nonce}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}"
    for bad in (later, flipped, f"{expiry}.x{nonce}.{mac}", f"{expiry}.{nonce}", mac, "", TOKEN, "..", "1.2.3"):
        assert not sessions.valid(bad, NOW), bad


def test_a_session_dated_beyond_one_lifetime_is_refused() -> None:
    """Even correctly signed: only issue() makes values, and it never dates them further."""
    sessions = Sessions(TOKEN)
    assert not sessions.valid(sessions.issue(NOW + 2 * SESSION_S), NOW)


def test_odd_text_is_refused_without_errors() -> None:
    sessions = Sessions(TOKEN)
    expiry = int(NOW) + 60
    for bad in (f"{expiry}.n.\udcff", "\udcff.n.abc", "١٢٣.n.abc", f"{expiry}.\x00.", "ü" * 5000):
        assert not sessions.valid(bad, NOW), bad


def test_a_real_clock_session() -> None:
    sessions = Sessions(TOKEN)
    assert sessions.valid(sessions.issue(time.time()), time.time())
