"""Redaction: no password survives, whatever shape the proxy URL has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrapy_proxystack.redact import (
    mask_credentials,
    mask_userinfo,
    redact_text,
    redact_url,
    shorten,
)

SECRET = "S3cret-Pw"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"http://alice:{SECRET}@127.0.1.1:8000", "http://127.0.1.1:8000"),
        (f"https://alice:{SECRET}@gw.example.net", "https://gw.example.net"),
        ("http://127.0.1.1:8000", "http://127.0.1.1:8000"),
        (f"http://alice:{SECRET}@[::1]:8000", "http://[::1]:8000"),
        (f"alice:{SECRET}@127.0.1.1:8000", "***@127.0.1.1:8000"),
        (f"http//alice:{SECRET}@127.0.1.1:8000", "***@127.0.1.1:8000"),
        (f"http://alice:{SECRET}@127.0.1.1:99999", "http://***@127.0.1.1:99999"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"proxy 'http://alice:{SECRET}@127.0.1.1:1' failed",
        f"'alice:{SECRET}@127.0.1.1:43429' has no supported scheme",
        f"socks5://bob:{SECRET}@1.2.3.4:1080 and http://u:{SECRET}@h:1",
        f"http//alice:{SECRET}@127.0.1.1:1",
        f"<alice:{SECRET}@host>",
    ],
)
def test_redact_text_masks_every_password_form(text: str) -> None:
    out = redact_text(text)
    assert SECRET not in out
    assert "***@" in out


PASSWORDS = st.text(
    alphabet=st.characters(
        whitelist_categories=("L", "N", "P", "S"), blacklist_characters="@'\"<>/"
    ),
    min_size=1,
)


@given(PASSWORDS)
def test_no_password_survives(password: str) -> None:
    assert redact_text(f"http://u:{password}@h:1") == "http://***@h:1"
    assert redact_text(f"see u:{password}@h:1 now") == "see ***@h:1 now"


@pytest.mark.parametrize(
    "password",
    [SECRET + " with space", SECRET + "\twith-tab", f"{SECRET}'q\"", f"{SECRET}@at", "p@ss w@rd"],
)
def test_mask_userinfo_hides_passwords_with_spaces_quotes_and_at_signs(password: str) -> None:
    assert mask_userinfo(f"http://alice:{password}@127.0.1.1:8000") == "http://***@127.0.1.1:8000"
    assert mask_userinfo(f"alice:{password}@127.0.1.1:8000") == "***@127.0.1.1:8000"
    assert redact_url(f"http://alice:{password}@[::1") == "http://***@[::1"
    assert mask_userinfo("http://127.0.1.1:8000") == "http://127.0.1.1:8000"


def test_mask_userinfo_does_not_take_a_password_for_a_scheme() -> None:
    assert mask_userinfo(f"u:{SECRET}://x@h:1") == "***@h:1"


def test_redact_text_is_linear() -> None:
    """The old pattern backtracked over every position: 20 KB took seconds, 1 MB hours."""
    import time

    def cost(n: int) -> float:
        text = ("a" * n) + " http://u:pw@h:1 " + ("b:" * n)
        started = time.perf_counter()
        out = redact_text(text)
        elapsed = time.perf_counter() - started
        assert "pw" not in out
        return elapsed

    cost(1000)  # warm up
    small = min(cost(100_000) for _ in range(3))
    large = min(cost(1_600_000) for _ in range(3))
    # 16 times the input: linear is ~16x; quadratic would be 256x. Generous for a loaded CI.
    assert large < max(small, 1e-3) * 64


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"http://alice:{SECRET}@127.0.1.1:8000", "http://***@127.0.1.1:8000"),
        (f"http://alice:{SECRET}", "http://***"),  # host forgotten: the password is no port
        (f"http://alice:{SECRET}/x", "http://***/x"),
        ("http://127.0.1.1:8000/x", "http://127.0.1.1:8000/x"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("fr", "fr"),
        # A vendor's host:port:user:password, with or without a scheme: masked whole.
        (f"1.2.3.4:8080:alice:{SECRET}", "***"),
        ("http://1.2.3.4:8080:alice:123456", "http://***"),
        # After the last @, what is no host:port may be credentials too.
        (f"http://host.example:80@carol:{SECRET}", "http://***@***"),
        ("http://[::1]:x1", "http://***"),
    ],
)
def test_mask_credentials(value: str, expected: str) -> None:
    assert mask_credentials(value) == expected


def test_shorten_says_how_long() -> None:
    assert shorten("x" * 80) == "x" * 80
    assert shorten("x" * 81) == "x" * 80 + "... (81 characters)"
    assert shorten("abcdef", 3) == "abc... (6 characters)"
