"""The JSON Schema of a spec with the installed plugins' names and options, for editor completion.

:func:`automl.spec.spec_json_schema` describes the spec's shape; :func:`plugin_schema` adds what
this installation provides: the registered searchers, trainers, schedulers, compressors and data
sets as ``enum`` values of their ``name`` (``data.dataset``) fields, each described by its
record's one line and package, and the options a searcher's or scheduler's factory declares
(keyword arguments, with their defaults) under ``options`` for that name.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

from automl.errors import AutoMLError

__all__ = ["plugin_schema"]

#: Spec section model in ``$defs`` -> (registry, name field, options field or None).
_FIELDS: dict[str, tuple[str, str, str | None]] = {
    "TrainerSection": ("trainers", "name", None),
    "SearcherSection": ("searchers", "name", "options"),
    "SchedulerSection": ("schedulers", "name", "options"),
    "CompressionStep": ("compressors", "name", None),
    "DataSection": ("datasets", "dataset", None),
}
_SKIP = {"searchers": {"self", "space", "objectives", "seed"}, "schedulers": {"self", "objectives", "max_budget"}}


def plugin_schema(disabled: Iterable[str] = ()) -> dict[str, Any]:
    """The spec's JSON Schema with the installed plugins' names as enums and their declared options.

    Args:
        disabled: Plugins not to load (as ``--disable-plugin``).
    """
    from automl.plugins import get_plugin_manager
    from automl.spec import spec_json_schema

    schema = spec_json_schema()
    pm = get_plugin_manager(disabled)
    for model, (kind, name_field, options_field) in _FIELDS.items():
        definition = schema.get("$defs", {}).get(model)
        if definition is None:
            continue
        try:
            registry = getattr(pm, kind)
        except AutoMLError:  # a registry that cannot load leaves its field a plain string
            continue
        names = registry.names()
        if not names:
            continue
        prop = definition["properties"][name_field]
        descriptions = [_describe(registry, n) for n in names]
        enum = {"enum": names, "enumDescriptions": descriptions, "markdownEnumDescriptions": descriptions}
        if "anyOf" in prop:  # an optional name (data.dataset): the string alternative gets the enum
            prop["anyOf"] = [{**alt, **enum} if alt.get("type") == "string" else alt for alt in prop["anyOf"]]
        else:
            prop.update(enum)
        if options_field is not None:
            cases = [_options_case(name_field, options_field, n, registry.records[n].factory, _SKIP[kind])
                     for n in names]
            definition.setdefault("allOf", []).extend(c for c in cases if c is not None)
    return schema


def _describe(registry: Any, name: str) -> str:
    record = registry.records[name]
    owner = registry.owners.get(name)
    package = f" ({owner.package})" if owner is not None and getattr(owner, "package", None) else ""
    return f"{getattr(record, 'description', '') or name}{package}"


def _options_case(name_field: str, options_field: str, name: str, factory: Callable[..., Any],
                  skip: set[str]) -> dict[str, Any] | None:
    """``if name == NAME then options: {its keyword arguments}`` (None when it takes none)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read
        return None
    properties: dict[str, Any] = {}
    for option, p in params.items():
        if option in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        properties[option] = {"default": p.default} if _jsonable(p.default) else {}
    if not properties:
        return None
    open_ended = any(p.kind == p.VAR_KEYWORD for p in params.values())
    options: dict[str, Any] = {"type": "object", "properties": properties}
    if not open_ended:
        options["additionalProperties"] = False  # the engine refuses an option the factory does not take
    return {"if": {"properties": {name_field: {"const": name}}, "required": [name_field]},
            "then": {"properties": {options_field: options}}}


def _jsonable(value: Any) -> bool:
    if value is inspect.Parameter.empty:
        return False
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
