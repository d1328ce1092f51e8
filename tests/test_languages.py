"""Site-language evidence: a geo-block needs evidence, a site's own language is learned
(scrapy_proxystack/languages.py)."""

from __future__ import annotations

from scrapy_proxystack.bans import declared_language, language_set
from scrapy_proxystack.languages import SiteLanguages


def test_a_locale_expects_every_language_of_its_accept_language() -> None:
    assert language_set("en-CA,fr-CA;q=0.9,en;q=0.8") == {"en", "fr"}
    assert language_set(["de", "fr-CH", "it"]) == {"de", "fr", "it"}
    assert declared_language(b'<!doctype html><html lang="fr-CA"><head>') == "fr"
    assert declared_language(b"<html><body>no declaration") is None


def test_a_language_is_learned_from_several_exits_and_a_block_needs_evidence() -> None:
    langs = SiteLanguages()
    assert langs.judge("en-only.fr", "en", "exit-1") == "pending"
    assert langs.judge("en-only.fr", "en", "exit-1") == "pending"  # same exit: no new evidence
    assert langs.judge("en-only.fr", "en", "exit-2") == "learned"
    assert langs.judge("en-only.fr", "en", "exit-3") == "site_language"
    assert langs.learned("en-only.fr") == "en"
    # A site that showed its locale's language: another one is a geo-block at once.
    langs.saw_expected("news.fr")
    assert langs.judge("news.fr", "en", "exit-1") == "geo_block"
    # A locale with a single exit learns from pages.
    assert [langs.judge("solo.fr", "de", "only") for _ in range(3)] == [
        "pending",
        "pending",
        "learned",
    ]
