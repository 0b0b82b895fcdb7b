"""The YAML reader for user specs: :class:`yaml.SafeLoader`'s rules with limits, and duplicate keys refused.

A spec is user input, possibly hostile or careless. ``yaml.safe_load`` constructs only plain
types, but it still follows aliases without bound (a "billion laughs" document of a few hundred
bytes expands to 10**9 values in whatever walks it next), recurses once per nesting level (a
2,000-deep document or a recursive alias ends in a ``RecursionError``) and keeps the last of two
equal keys (``trials: 5`` then ``trials: 500``). :func:`load_yaml` refuses each of these, and a
file over a size limit, with one :class:`~automl.errors.SpecError` naming the file and the line.

It builds only what ``yaml.SafeLoader`` builds (its ``SafeConstructor`` and ``Resolver``: plain
scalars, lists and mappings; any ``!!python/...`` tag is refused); the events come from libyaml's
parser where PyYAML has it, else from the pure-Python one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from automl.errors import SpecError

__all__ = ["DEFAULT_LIMITS", "YamlLimits", "load_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlLimits:
    """What :func:`load_yaml` accepts.

    Attributes:
        max_bytes: Size of the text, in UTF-8 bytes.
        max_depth: Nesting levels, aliases expanded (a spec needs about 6).
        max_aliases: ``*name`` references in the document.
        max_nodes: Values (scalars, lists and mappings) once every alias is expanded: what a
            walk over the loaded document visits.
    """

    max_bytes: int = 10 * 2**20
    max_depth: int = 64
    max_aliases: int = 1000
    max_nodes: int = 1_000_000


DEFAULT_LIMITS = YamlLimits()


class _Refused(Exception):
    """A limit or rule broken while loading; turned into a :class:`SpecError` by :func:`load_yaml`."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _Rules(Composer, SafeConstructor, Resolver):
    """``SafeLoader``'s composer, constructor and resolver, counting nesting and aliases while composing
    and refusing duplicate keys; the events come from the parser a subclass adds."""

    def _start(self, limits: YamlLimits) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.limits = limits
        self._depth = 0
        self._aliases = 0
        self._open: list[str] = []  # anchors of the nodes being composed (an alias to one is recursive)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > self.limits.max_aliases:
                raise _Refused(f"more than {self.limits.max_aliases} aliases (*name) in one spec", event.start_mark)
            if event.anchor in self._open:
                raise _Refused(f"the alias *{event.anchor} is inside the value its anchor &{event.anchor} names "
                               "(a recursive alias): it would expand without end", event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        if self._depth >= self.limits.max_depth:
            raise _Refused(f"nested more than {self.limits.max_depth} levels deep", event.start_mark)
        self._depth += 1
        if event.anchor is not None:
            self._open.append(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if event.anchor is not None:
                self._open.pop()

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                # Keys a merge (<<: *base) brings in may be overridden: that is what a merge is for.
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # unhashable: the constructor refuses it below
                    continue
                if first is not key_node:
                    raise _Refused(f"duplicate key {key_node.value!r}: also at line {first.start_mark.line + 1} "
                                   "(the later value would silently win); keep one", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _LimitedLoader(_Rules, CParser):
        """The rules over libyaml's parser (its events only: composing stays in Python, under the limits).

        Six times faster than the pure-Python scanner on a large spec; libyaml's parser keeps an
        explicit stack, so nesting costs it no recursion.
        """

        def __init__(self, stream: str, limits: YamlLimits) -> None:
            CParser.__init__(self, stream)
            self._start(limits)

else:  # pragma: no cover - PyYAML built without libyaml

    class _LimitedLoader(_Rules, Reader, Scanner, Parser):  # type: ignore[no-redef]
        """The rules over PyYAML's pure-Python reader, scanner and parser (``yaml.SafeLoader``'s)."""

        def __init__(self, stream: str, limits: YamlLimits) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            self._start(limits)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, limits: YamlLimits) -> None:
    """Refuse a node graph whose aliases expand past ``max_nodes`` values or ``max_depth`` levels.

    Linear in the composed graph (each node's expanded size and height is computed once) and
    without recursion, so a hostile graph cannot exhaust the stack here either.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if size[key] > limits.max_nodes:
                raise _Refused(f"the value here expands (through its aliases) to more than {limits.max_nodes:,} "
                               "values", node.start_mark)
            if height[key] > limits.max_depth:
                raise _Refused(f"the value here is nested (through its aliases) more than {limits.max_depth} "
                               "levels deep", node.start_mark)
            continue
        if key in size:
            continue
        if key in on_path:  # the composer refuses these first; kept so this walk always ends
            raise _Refused("a recursive alias: a value contains itself", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(_children(node)) if id(k) not in size)


def load_yaml(text: str, source: str | None = None, limits: YamlLimits = DEFAULT_LIMITS) -> tuple[Any, yaml.Node | None]:
    """The document in ``text`` and its node graph (for line numbers), read within ``limits``.

    Args:
        text: The YAML text (one document).
        source: The file name for messages.
        limits: What is accepted.

    Returns:
        ``(data, node)``: the plain Python value (``None`` and no node for an empty document).

    Raises:
        SpecError: For a YAML syntax error, a broken limit, a recursive alias or a duplicate
            key, naming ``source`` and the line and column.
    """
    if len(text) > limits.max_bytes or len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise SpecError(f"the spec is larger than {limits.max_bytes:,} bytes; a spec holds settings, not data "
                        "(name a data file in `data:` instead)", file=source)
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text, limits)  # its reader refuses control characters at once
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_expansion(node, limits)
        data = loader.construct_document(node)
    except _Refused as exc:
        mark = exc.mark
        raise SpecError(exc.message, file=source, line=mark.line + 1 if mark else None,
                        column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError):
            char = chr(exc.character) if isinstance(exc.character, int) else exc.character
            problem = f"character {char!r} is not allowed in YAML ({exc.reason}); is this a text file?"
            line = text.count("\n", 0, exc.position) + 1
            raise SpecError(f"YAML syntax error: {problem}", file=source, line=line) from None
        raise SpecError(
            f"YAML syntax error: {problem}",
            file=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node
