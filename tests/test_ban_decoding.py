"""The ban middleware reads compressed bodies (it runs before HttpCompressionMiddleware)."""

from __future__ import annotations

import gzip
import zlib

from scrapy.http import Response

from scrapy_proxystack.downloadermiddlewares.bans import _decoded_head

PAGE = b"<html><head><title>Just a moment...</title></head><body>cf-chl</body></html>"


def response(body: bytes, coding: str) -> Response:
    return Response("http://127.0.0.1/", body=body, headers={"Content-Encoding": coding})


def test_single_and_stacked_codings() -> None:
    assert _decoded_head(response(gzip.compress(PAGE), "gzip")) == PAGE
    assert _decoded_head(response(zlib.compress(PAGE), "deflate")) == PAGE
    # "gzip, deflate": gzip was applied first, so it is undone last.
    stacked = zlib.compress(gzip.compress(PAGE))
    assert _decoded_head(response(stacked, "gzip, deflate")) == PAGE
    assert _decoded_head(response(PAGE, "identity")) == PAGE


def test_unknown_or_broken_coding_is_reported_not_guessed() -> None:
    assert _decoded_head(response(PAGE, "compress")) is None
    assert _decoded_head(response(b"not gzip at all", "gzip")) is None


def test_a_compression_bomb_costs_only_the_scanned_head() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    head = _decoded_head(response(bomb, "gzip"), limit=65536)
    assert head == b"\0" * 65536
