"""Reading the proxy YAML file: PyYAML's safe loader, made strict and linear.

Kept apart from the schema (:mod:`scrapy_proxystack.config`): this module knows YAML nodes,
tags and marks, the schema knows locales and proxies. What it changes, and why:

* a key written twice in one mapping is an error naming both lines (PyYAML keeps the last
  silently: a second ``fr:`` would drop the first list of proxies);
* merge keys (``<<: *defaults``) are resolved on constructed mappings, not by copying node
  lists: PyYAML's own flattening doubles its work per level of ``<<: [*a, *a]``;
* a malformed typed scalar (an empty ``!!int``, a 5,000-digit integer, ``2024-13-45``) is an
  error with its line and column, not a raw ``IndexError`` or a ``ValueError`` quoting it.

Aliases are kept as shared objects (the schema refuses them where they make no sense), so a
YAML "billion laughs" document costs its size, never its expansion.

Most proxy files use none of that: plain mappings, lists and scalars. Those are built straight
from the parser's events (:func:`_read_plain`), without the node graph PyYAML composes first (a
node and two marks per scalar: about 400 bytes and 3 µs each, 400 MB for a million proxies).
The first anchor, alias, tag, merge key or repeated key sends the document through the full
loader above, which reads it again and reports what it must.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from scrapy_proxystack.redact import mask_credentials, redact_text, shorten

__all__ = ["YamlRefused", "read_yaml"]

#: The C loader when present (100,000 proxies load in a second); safe either way.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_STR_TAG = "tag:yaml.org,2002:str"
#: Duplicate keys reported one by one; more are left for the next run.
_MAX_DUPLICATES = 20


class YamlRefused(Exception):
    """The text is not a YAML document the suite accepts; ``problems`` say why and where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _shown(text: str) -> str:
    return shorten(mask_credentials(text))


class _DuplicateKey(NamedTuple):
    mapping: MappingNode
    key: str  # as written
    line: int
    first_line: int


class _Loader(_SAFE_LOADER):  # type: ignore[misc]
    """``yaml.safe_load`` with two differences that make a proxy file mean what it says.

    * A key written twice in one mapping is recorded (PyYAML keeps the last silently: a second
      ``fr:`` would drop the first list of proxies).
    * Merge keys (``<<: *defaults``) are resolved on the constructed mappings, not by copying
      node lists: PyYAML's own flattening doubles its work per level of ``<<: [*a, *a]``.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[_DuplicateKey] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark
            )
        merges: list[Any] = []
        mapping: dict[Any, Any] = {}
        first: dict[Any, Any] = {}  # key -> its node (a line number only when one repeats)
        construct = self.construct_object
        for key_node, value_node in node.value:
            tag = key_node.tag
            if tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if tag == _VALUE_TAG:
                key_node.tag = _STR_TAG
            key = construct(key_node, deep=deep)
            try:
                repeated = key in first
            except TypeError:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                ) from None
            if repeated:
                line = first[key].start_mark.line + 1
                written = key_node.value if isinstance(key_node.value, str) else repr(key)
                self.duplicates.append(
                    _DuplicateKey(node, written, key_node.start_mark.line + 1, line)
                )
            else:
                first[key] = key_node
            mapping[key] = construct(value_node, deep=deep)
        if not merges:
            return mapping
        # Earlier merge sources win over later ones, explicit keys over all (YAML 1.1 merge).
        merged: dict[Any, Any] = {}
        for source in reversed(merges):
            items = source.value if isinstance(source, SequenceNode) else [source]
            for item in reversed(items):
                if not isinstance(item, MappingNode):
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping or list of mappings for merging, but found {item.id}",
                        item.start_mark,
                    )
                merged.update(construct(item, deep=True))
        merged.update(mapping)
        return merged


_SCALAR_ERRORS = (ValueError, OverflowError, IndexError, TypeError, AttributeError, KeyError)


def _guarded(tag: str) -> Any:
    """PyYAML's safe constructor for ``tag``, failing with a position instead of a raw error.

    The raw errors (``IndexError`` on an empty ``!!int``, ``ValueError`` quoting the value,
    the 4,300-digit limit of ``int()``) would escape as non-YAML errors, some with the value.
    """
    constructor = _SAFE_LOADER.yaml_constructors[f"tag:yaml.org,2002:{tag}"]

    def construct(loader: Any, node: Any) -> Any:
        try:
            return constructor(loader, node)
        except _SCALAR_ERRORS:
            raise ConstructorError(
                None,
                None,
                f"this {tag} cannot be read (malformed or out of range)",
                node.start_mark,
            ) from None

    return construct


for _tag in ("null", "bool", "int", "float", "binary", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _guarded(_tag))


def _node_path(root: Any, target: MappingNode) -> str:
    """The key path (``locales.fr``) of ``target`` under ``root``, for an error message.

    Breadth-first over the node graph, each node once: linear even when aliases share nodes.
    Only called when there is an error to report.
    """
    seen = {id(root)}
    queue: list[tuple[Any, str]] = [(root, "")]
    for node, path in queue:
        if node is target:
            return path or "(top level)"
        if isinstance(node, MappingNode):
            children = [
                (v, f"{path}.{_shown(k.value)}" if path else _shown(k.value))
                for k, v in node.value
                if not isinstance(k.value, list)
            ]
        elif isinstance(node, SequenceNode):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
        else:
            continue
        for child, child_path in children:
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((child, child_path))
    return "(unknown place)"


class _NotPlain(Exception):
    """The document uses what only the full loader handles (or has an error to report)."""


_NO_VALUE: Any = object()
#: Nesting the plain reader builds; deeper documents go to the full loader (which refuses
#: them with a message, where a recursion limit would stop it).
_MAX_PLAIN_DEPTH = 200


def _read_plain(text: str) -> Any:
    """The document built from parser events, or raise :class:`_NotPlain`.

    Handles mappings, lists and scalars with implicit tags, resolved and constructed exactly as
    the safe loader does. Anything else (an anchor, an alias, an explicit tag, a merge key, a
    key written twice, a second document, a key that is not a scalar, an error) raises
    :class:`_NotPlain`, and :func:`read_yaml` reads the text again with the full loader.
    """
    loader = _SAFE_LOADER(text)
    resolvers = loader.yaml_implicit_resolvers
    resolve = loader.resolve
    constructors = _Loader.yaml_constructors
    get_event = loader.get_event
    # Each open container: (the container, the pending key of a mapping or _NO_VALUE).
    stack: list[list[Any]] = []
    root: Any = None
    documents = 0
    try:
        while True:
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:
                if event.anchor is not None or event.tag not in (None, "!"):
                    raise _NotPlain
                value: Any = event.value
                if event.implicit[0] and (not value or value[0] in resolvers):
                    tag = resolve(ScalarNode, value, event.implicit)
                    if tag != _STR_TAG:
                        if tag in (_MERGE_TAG, _VALUE_TAG):
                            raise _NotPlain
                        node = ScalarNode(tag, value, event.start_mark, event.end_mark)
                        value = constructors[tag](loader, node)
            elif kind is SequenceStartEvent or kind is MappingStartEvent:
                if event.anchor is not None or event.tag not in (None, "!"):
                    raise _NotPlain
                if len(stack) >= _MAX_PLAIN_DEPTH:
                    raise _NotPlain  # the full loader says how deep is too deep
                stack.append([[] if kind is SequenceStartEvent else {}, _NO_VALUE])
                continue
            elif kind is SequenceEndEvent or kind is MappingEndEvent:
                value = stack.pop()[0]
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _NotPlain
                continue
            elif kind is StreamStartEvent or kind is DocumentEndEvent:
                continue
            elif kind is StreamEndEvent:
                return root
            else:  # an alias, or an event of a later PyYAML
                raise _NotPlain
            if not stack:
                root = value
                continue
            top = stack[-1]
            container = top[0]
            if type(container) is list:
                container.append(value)
            elif top[1] is _NO_VALUE:
                if type(value) in (list, dict) or value in container:
                    raise _NotPlain  # a complex key, or a key written twice
                top[1] = value
            else:
                container[top[1]] = value
                top[1] = _NO_VALUE
    except (yaml.YAMLError, *_SCALAR_ERRORS, RecursionError):
        raise _NotPlain from None
    finally:
        loader.dispose()


def read_yaml(text: str, source: str) -> Any:
    """Parse ``text`` (safe tags only); ``source`` names the file in the problems raised."""
    try:
        return _read_plain(text)
    except _NotPlain:
        pass
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = shorten(redact_text(str(exc.problem or exc.context or "syntax error")))
        raise YamlRefused(
            [f"{source}: YAML syntax error at {where}: {problem}; expected valid YAML"]
        ) from None
    except yaml.YAMLError as exc:
        raise YamlRefused([f"{source}: YAML error: {shorten(redact_text(str(exc)))}"]) from None
    except RecursionError:
        raise YamlRefused(
            [f"{source}: aliases or merge keys (<<) nest too deeply; expected a flatter file"]
        ) from None
    except _SCALAR_ERRORS as exc:
        # A safe constructor not guarded above (!!set, !!omap...): its text may quote a value.
        raise YamlRefused(
            [
                f"{source}: a value cannot be read ({type(exc).__name__}); expected "
                "well-formed values"
            ]
        ) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise YamlRefused(
            [
                f"{source}: {_node_path(root, d.mapping)}: key {_shown(d.key)!r} appears "
                f"twice (lines {d.first_line} and {d.line}); expected each key once "
                "(YAML would silently keep only the last one)"
                for d in loader.duplicates[:_MAX_DUPLICATES]
            ]
        )
    return data
