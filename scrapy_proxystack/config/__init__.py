"""The proxy configuration: the YAML schema, its validation, and the frozen objects it yields.

The YAML file (``PROXYSTACK_PROXIES_FILE``) or the equivalent dict (``PROXYSTACK_PROXIES``) is
read once, at start-up, before any request. Every problem found is reported at once, each line
naming the file, the key path (``locales.fr.proxies[2]``), the offending value with credentials
redacted, and what was expected, because a crawl that starts on a broken proxy list burns hours
of proxy budget before anyone notices.

Plain package (no Scrapy import): ``model`` (the frozen types), ``loader`` (reading YAML
strictly), ``schema`` (the checks, building the model); the two entry points are here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy_proxystack.config.loader import YamlRefused, read_yaml
from scrapy_proxystack.config.model import (
    ANONYMITY_GRADES,
    DEFAULT_POOL,
    SOCKS_SCHEMES,
    STRATEGIES,
    BanRules,
    CanaryConfig,
    ConfigError,
    DomainRule,
    ExitTable,
    LocaleConfig,
    PoolConfig,
    ProxyConfig,
    ProxyEntry,
    ProxyList,
)
from scrapy_proxystack.config.schema import parse

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence

__all__ = [
    "ANONYMITY_GRADES",
    "DEFAULT_POOL",
    "SOCKS_SCHEMES",
    "STRATEGIES",
    "BanRules",
    "CanaryConfig",
    "ConfigError",
    "DomainRule",
    "ExitTable",
    "LocaleConfig",
    "PoolConfig",
    "ProxyConfig",
    "ProxyEntry",
    "ProxyList",
    "load_proxy_config",
    "parse_proxy_config",
]


def load_proxy_config(
    path: str | os.PathLike[str] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    extra_unlocalized: Sequence[str] = (),
    extra_source: str = "ROTATING_PROXY_LIST",
    auth_encoding: str = "latin-1",
) -> ProxyConfig:
    """Read the YAML file at ``path`` and/or the ``data`` dict, validate, and return the config.

    ``extra_unlocalized`` are proxy URLs that belong to no locale (the scrapy-rotating-proxies
    list of a project that is migrating). ``auth_encoding`` is the crawl's
    ``HTTPPROXY_AUTH_ENCODING`` (Scrapy's default is latin-1): credentials it cannot encode are
    refused here rather than failing on every request sent through that exit.
    """
    if path is not None and data is not None:
        raise ConfigError(
            [
                "PROXYSTACK_PROXIES_FILE and PROXYSTACK_PROXIES are both set; "
                "expected one source of proxies (remove one of the two settings)"
            ]
        )
    if path is not None:
        source = str(path)
        resolved = Path(path).expanduser()
        try:
            text = resolved.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                [
                    f"{source}: file not found (looked at {resolved.resolve()}); "
                    "expected a YAML proxy file (check PROXYSTACK_PROXIES_FILE)"
                ]
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{source}: cannot be read: {exc}"]) from None
        try:
            loaded = read_yaml(text, source)
        except YamlRefused as exc:
            raise ConfigError(exc.problems) from None
        if loaded is None:
            loaded = {}
    elif data is not None:
        source = "PROXYSTACK_PROXIES"
        loaded = data
    else:
        source = extra_source
        loaded = {}
    return parse_proxy_config(
        loaded,
        source=source,
        extra_unlocalized=extra_unlocalized,
        extra_source=extra_source,
        auth_encoding=auth_encoding,
        base_dir=Path(path).expanduser().parent if path is not None else None,
    )


def parse_proxy_config(
    data: Any,
    *,
    source: str = "PROXYSTACK_PROXIES",
    extra_unlocalized: Sequence[str] = (),
    extra_source: str = "ROTATING_PROXY_LIST",
    auth_encoding: str = "latin-1",
    base_dir: str | os.PathLike[str] | None = None,
) -> ProxyConfig:
    """Validate an already-loaded mapping (see :func:`load_proxy_config`).

    ``base_dir`` is where a relative ``proxies_file`` is found (the current directory when
    ``None``); :func:`load_proxy_config` passes the YAML file's directory.
    """
    return parse(
        data,
        source=source,
        extra_unlocalized=extra_unlocalized,
        extra_source=extra_source,
        auth_encoding=auth_encoding,
        base_dir=Path(base_dir) if base_dir is not None else None,
    )
