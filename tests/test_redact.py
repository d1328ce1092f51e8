"""Redaction: no password survives, whatever shape the proxy URL has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrapy_proxystack.redact import redact_text, redact_url

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
