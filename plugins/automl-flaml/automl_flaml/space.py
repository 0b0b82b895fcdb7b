"""An automl :class:`~automl.space.SearchSpace` as a ``flaml.tune`` space, and configs both ways.

FLAML's hierarchical spaces are nested dicts: a ``tune.choice`` whose categories are dicts
picks one dict, and the parameters inside it exist only for that choice. A choice that
other parameters depend on (``when: {model: [...]}``) becomes such a choice over one dict
per value; each dict holds the choice's own value (as a constant, which is how FLAML tells
the dicts apart) and every later parameter of its group that is active under that value.
Nested conditions nest further (``kernel`` inside the ``svm`` dict), and a parameter with
two parents lands in the dicts where both hold. A parameter under several values of a
parent gets one FLAML dimension per dict: FLAML searches them separately.

Values FLAML sees:

* floats: ``uniform`` / ``loguniform`` over ``[low, high]``; a ``step`` is applied when the
  value comes back (snapped onto ``low + k * step``, as the other searchers do).
* ints: ``randint`` / ``lograndint`` over ``[low, high]``; a linear int with a ``step``
  becomes the index ``k`` of ``low + k * step`` (exact, no snapping); a log int with a
  step is snapped on the way back.
* choices: the index of the value. Choices whose values are all numbers are *ordered* for
  FLAML (its local search moves to the neighbouring values, smallest to largest); others
  are unordered. Indices keep every value exact (``3`` is not ``3.0``, ``False`` is not
  ``0``), which FLAML's numpy sampling would not.
* a one-value parameter: a constant.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from automl.plugin import Choice, Float, Int, Param, SearchSpace

__all__ = [
    "LOW_COST_NAMES",
    "MAX_DIMENSIONS",
    "FlamlSpace",
    "check_flaml_space",
    "default_low_cost",
]

#: Refuse a tree with more FLAML dimensions than this: each conditional dict copies the parameters under it.
MAX_DIMENSIONS = 2000
#: Parameter names (also as ``<prefix>.<name>`` or ``<model>__<name>``) whose cost grows with the
#: value: CFO starts them at ``low``.
LOW_COST_NAMES = frozenset({"n_estimators", "num_leaves", "max_iter", "max_leaves", "n_neighbors"})
#: Key FLAML adds to a chosen dict (the index of the category); never a parameter.
_CHOICE_KEY = "_choice_"


@dataclass(frozen=True)
class _Leaf:
    name: str


@dataclass(frozen=True)
class _Const:
    name: str
    raw: Any


@dataclass(frozen=True)
class _Branch:
    name: str
    layouts: tuple[dict[str, Any], ...]  # one layout per value of the choice, in value order


def _order(param: Choice) -> list[int]:
    """Positions of the choice's values in the order FLAML sees them (by value when all are numbers)."""
    values = param.values
    if _numeric(values):
        return sorted(range(len(values)), key=lambda i: float(values[i]))  # type: ignore[arg-type]
    return list(range(len(values)))


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _is_constant(param: Param) -> bool:
    if isinstance(param, Choice):
        return len(param.values) == 1
    return param.low == param.high


def check_flaml_space(space: SearchSpace) -> None:
    """Raise ``ValueError`` with the reason when FLAML cannot search ``space``.

    FLAML reserves ``/`` and ``:`` in names (it joins nested keys with them) and the name
    ``_choice_``; every condition tree is expressible, but one whose dicts multiply into more
    than :data:`MAX_DIMENSIONS` dimensions is refused, and so is a space with nothing to search
    (every parameter of one value: FLAML's searchers need a dimension).
    """
    if all(_is_constant(p) for p in space.values()):
        raise ValueError("every parameter has a single value: nothing to search (use random or grid)")
    for name in space:
        if "/" in name or ":" in name or name.endswith(_CHOICE_KEY):
            raise ValueError(
                f"parameter {name!r}: FLAML joins nested names with '/' and ':' and reserves '{_CHOICE_KEY}'; "
                "rename the parameter"
            )
    FlamlSpace(space)


class FlamlSpace:
    """The FLAML form of a space: :meth:`domains` for FLAML, :meth:`decode` / :meth:`encode` for configs.

    Laying the tree out needs no FLAML; :meth:`domains` imports it.

    Args:
        space: The automl space.

    Raises:
        ValueError: When the conditions multiply into more than :data:`MAX_DIMENSIONS` dimensions.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._orders = {name: _order(p) for name, p in space.items() if isinstance(p, Choice)}
        self._count = 0
        self.layout = self._layout()
        self.hierarchical = any(isinstance(n, _Branch) for n in self.layout.values())

    # -- the tree ------------------------------------------------------------------------

    def _layout(self) -> dict[str, Any]:
        parents = {parent for p in self.space.values() for parent in p.when}
        group = {name: name for name in self.space}

        def find(name: str) -> str:
            while group[name] != name:
                group[name] = group[group[name]]
                name = group[name]
            return name

        for name, p in self.space.items():
            for parent in p.when:
                group[find(name)] = find(parent)
        components: dict[str, list[str]] = {}
        for name in self.space:
            components.setdefault(find(name), []).append(name)

        def build(names: list[str], start: int, context: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for i in range(start, len(names)):
                name = names[i]
                p = self.space[name]
                if not p.is_active(context):
                    continue
                self._count += 1
                if self._count > MAX_DIMENSIONS:
                    raise ValueError(
                        f"the conditions multiply into more than {MAX_DIMENSIONS} FLAML dimensions (each "
                        "conditional dict holds its own copy of the parameters under it); use fewer nested "
                        "conditions, or a define-by-run searcher such as tpe"
                    )
                if _is_constant(p):
                    out[name] = _Const(name, self.to_raw(name, p.values[0] if isinstance(p, Choice) else p.low))
                    if isinstance(p, Choice):
                        context = {**context, name: p.values[0]}
                    continue
                if isinstance(p, Choice) and name in parents:
                    # Every later parameter of the group goes inside each dict, where this value is known.
                    layouts = tuple(
                        {name: _Const(name, self.to_raw(name, value)), **build(names, i + 1, {**context, name: value})}
                        for value in p.values
                    )
                    out[name] = _Branch(name, layouts)
                    return out
                out[name] = _Leaf(name)
            return out

        layout: dict[str, Any] = {}
        for names in components.values():
            layout.update(build(names, 0, {}))
        return layout

    def domains(self) -> dict[str, Any]:
        """A new ``flaml.tune`` space (FLAML annotates its domains in place: one per searcher)."""
        from flaml import tune

        def build(layout: Mapping[str, Any], top: bool = False) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, node in layout.items():
                if isinstance(node, _Const):
                    # A constant outside any dict stays out of FLAML's space (decode puts it back): BlendSearch's
                    # global Optuna search fails on a plain value among its domains. Inside a dict it stays:
                    # FLAML tells the dicts apart by their constants.
                    if not top:
                        out[key] = node.raw
                elif isinstance(node, _Branch):
                    out[key] = tune.choice([build(sub) for sub in node.layouts], order=False)
                else:
                    out[key] = self._domain(tune, node.name)
            return out

        return build(self.layout, top=True)

    def _domain(self, tune: Any, name: str) -> Any:
        p = self.space[name]
        if isinstance(p, Choice):
            return tune.choice(list(range(len(p.values))), order=_numeric(p.values))
        if isinstance(p, Float):
            return tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
        if p.log:
            return tune.lograndint(p.low, p.high + 1)  # upper bound exclusive
        if p.step > 1:
            return tune.randint(0, (p.high - p.low) // p.step + 1)  # the index k of low + k * step
        return tune.randint(p.low, p.high + 1)

    # -- values both ways ----------------------------------------------------------------

    def to_raw(self, name: str, value: Any) -> Any:
        """What FLAML sees for ``value`` of parameter ``name``."""
        p = self.space[name]
        if isinstance(p, Choice):
            return self._orders[name].index(self.index(name, value))
        if isinstance(p, Int):
            if not p.log and p.step > 1:
                return (int(value) - p.low) // p.step
            return int(value)
        return float(value)

    def from_raw(self, name: str, raw: Any) -> Any:
        """The config value of parameter ``name`` for FLAML's ``raw`` (snapped onto the space)."""
        p = self.space[name]
        if isinstance(p, Choice):
            k = min(max(int(raw), 0), len(p.values) - 1)
            return p.values[self._orders[name][k]]
        if isinstance(p, Int):
            if not p.log and p.step > 1:
                return int(p.clip(p.low + int(round(float(raw))) * p.step))
            return int(p.clip(float(raw)))
        value = float(raw)
        if not math.isfinite(value):
            value = p.low
        return float(p.clip(value))

    def decode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The flat automl config (space order, inactive parameters absent) of a FLAML config."""
        raw: dict[str, Any] = {}

        def walk(level: Mapping[str, Any]) -> None:
            for key, value in level.items():
                if key == _CHOICE_KEY:
                    continue
                if isinstance(value, Mapping):
                    walk(value)
                elif key in self.space:
                    raw[key] = value

        walk(config)
        for key, node in self.layout.items():
            if isinstance(node, _Const):  # left out of FLAML's space (see domains)
                raw.setdefault(key, node.raw)
        out: dict[str, Any] = {}
        for name, p in self.space.items():
            if p.is_active(out):
                if name not in raw:
                    raise ValueError(f"FLAML's config {dict(config)} has no value for active parameter {name!r}")
                out[name] = self.from_raw(name, raw[name])
        return out

    def encode(self, config: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """The FLAML config of a flat automl ``config``.

        Args:
            config: A point of the space (``partial``: some parameters, each with the choices
                that make it active).
            partial: Leave out what ``config`` does not give (FLAML completes it at random);
                a dict choice left out is left out with everything under it.
        """

        def walk(layout: Mapping[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, node in layout.items():
                if isinstance(node, _Const):
                    if layout is not self.layout:  # top-level constants are not in FLAML's space
                        out[key] = node.raw
                elif isinstance(node, _Branch):
                    if node.name in config:
                        index = self.index(node.name, config[node.name])
                        # The chosen dict with its constants: FLAML finds the category by them.
                        out[key] = walk(node.layouts[index])
                    elif not partial:
                        raise ValueError(f"config {dict(config)} has no value for {node.name!r}")
                elif node.name in config:
                    out[key] = self.to_raw(node.name, config[node.name])
                elif not partial:
                    raise ValueError(f"config {dict(config)} has no value for {node.name!r}")
            return out

        return walk(self.layout)

    def index(self, name: str, value: Any) -> int:
        """Position of ``value`` among the values of choice ``name`` (exact type: ``3`` is not ``3.0``)."""
        values = self.space[name].values  # type: ignore[union-attr]
        return next(i for i, v in enumerate(values) if v == value and type(v) is type(value))

    def branches(self) -> list[str]:
        """The choices that pick a dict at the top level of the tree (``model``), in space order."""
        return [node.name for node in self.layout.values() if isinstance(node, _Branch)]


def default_low_cost(space: SearchSpace) -> dict[str, Any]:
    """Low-cost starting values CFO gets when the spec gives none: ``low`` for every int or
    float parameter named like a size (:data:`LOW_COST_NAMES`, also as ``<prefix>.<name>`` or
    ``<model>__<name>``) and for every int with ``log: true`` (log scale marks a size: units,
    trees, leaves)."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if not isinstance(p, (Int, Float)) or _is_constant(p):
            continue
        base = name.rsplit(".", 1)[-1].rsplit("__", 1)[-1]
        if base in LOW_COST_NAMES or (isinstance(p, Int) and p.log):
            out[name] = p.low
    return out


def is_number(value: Any) -> TypeGuard[float]:
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
