"""E-mail addresses: around an ``@`` the scan stopped at (plain, full-width, obfuscated, URL- or
HTML-encoded) and spelled out in words."""

from __future__ import annotations

import re

from scrapy_proxystack.pii import _patterns as p
from scrapy_proxystack.pii import types as t

_OBF_DOT = re.compile(r"\s*[\[(<{]?\s*(?:dot|DOT|Dot|\.)\s*[\])>}]?\s*")
_EXAMPLE_SUBDOMAINS = tuple("." + d for d in sorted(p.EXAMPLE_DOMAINS))


def find_email(text: str, at_start: int, at_end: int, *, encoded: bool = False) -> t.PiiSpan | None:
    """An e-mail around the ``@`` at ``text[at_start:at_end]`` (or its obfuscated, URL- or
    HTML-encoded form); zero-width characters on either side of it are part of the value."""
    local_end = at_start
    while local_end and text[local_end - 1] in p.ZERO_WIDTH and at_start - local_end < 4:
        local_end -= 1
    local = p.LOCAL_TAIL.search(text, max(0, local_end - 66), local_end)
    if local is None:
        return None
    start = local.start()
    while start < local_end and text[start] in ".-'":
        start += 1
    if start >= local_end or not text[start].isalnum():
        return None
    n = len(text)
    while at_end < n and text[at_end] in p.ZERO_WIDTH and at_end - at_start < 8:
        at_end += 1
    obfuscated = not encoded and (text[at_start] not in "@\uff20" or text[local_end - 1].isspace())
    dom = (p.OBF_DOMAIN if obfuscated else p.DOMAIN).match(text, at_end)
    if dom is None:
        return None
    domain = dom.group().strip()
    if obfuscated:
        domain = _OBF_DOT.sub(".", domain)
    domain = domain.lower()
    if domain in p.EXAMPLE_DOMAINS or domain.rsplit(".", 1)[-1] in p.EXAMPLE_TLDS:
        return None
    if domain.endswith(_EXAMPLE_SUBDOMAINS):
        return None
    return t.PiiSpan(t.EMAIL, start, dom.end(), text[start : dom.end()])


def worded_emails(text: str) -> list[t.PiiSpan]:
    """E-mail addresses spelled out in words ("jane AT mailbox DOT org", "jane.roe at mailbox
    dot org"). Looked for only around each " dot ", which prose rarely holds."""
    out: list[t.PiiSpan] = []
    last = 0
    n = len(text)
    for d in p.WORDED_DOT.finditer(text):
        if d.start() < last:
            continue
        for m in p.WORDED_EMAIL.finditer(text, max(last, d.start() - 140), min(n, d.end() + 400)):
            if not m.start() <= d.start() < m.end():
                continue
            labels = p.WORDED_DOT.split(m.group("domain"))
            shouting = m.group("at") == "AT" and " dot " not in m.group("domain")
            local = m.group("local")
            if not shouting and not (
                local[0].isalpha() and any(ch in "._%+-0123456789" for ch in local)
            ):
                continue  # "look at the dot com bubble", "1.2 at build dot net": no user name
            tld = labels[-1].lower()
            domain = ".".join(labels).lower()
            if tld not in p.WORDED_TLDS or domain in p.EXAMPLE_DOMAINS:
                continue
            if domain.endswith(_EXAMPLE_SUBDOMAINS):
                continue
            out.append(t.PiiSpan(t.EMAIL, m.start(), m.end(), m.group()))
            last = m.end()
            break
    return out
