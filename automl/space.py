"""Search spaces: typed parameters, conditions and the operations searchers share.

A space is an ordered mapping of parameter name to :class:`Float`, :class:`Int` or
:class:`Choice`. A parameter may carry a condition (``when``) naming a choice
parameter and the values under which it exists; an inactive parameter is absent from a
config. Parameters are kept in an order where every condition refers to an earlier
parameter, so sampling in order always knows whether a parameter is active.

Vector searchers (quasi-random sequences, CMA-ES, Gaussian processes) work in the unit cube:
:meth:`SearchSpace.from_unit` maps a point of ``[0, 1]`` per parameter onto a config and
:meth:`SearchSpace.to_unit` maps a config back, so that ``from_unit(to_unit(config)) == config``
for every config of the space.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

__all__ = ["Choice", "Float", "Int", "Param", "SearchSpace", "Value"]

Value = Union[bool, int, float, str, None]

#: How many floating-point neighbours of a computed unit value :meth:`Float.to_unit` tries for one
#: that maps back to the value exactly (the forward map rounds; a few ulps always suffice for its outputs).
_NUDGES = 16


def _number(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError naming the parameter (a bool, a string or NaN is no number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"parameter {name!r}: {value!r} is not a number")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"parameter {name!r}: NaN has no place in the unit cube")
    return number


@dataclass(frozen=True)
class _Base:
    name: str
    # {parent_name: (allowed values, ...)}: the parameter exists only when every parent
    # takes one of its allowed values.
    when: Mapping[str, tuple[Value, ...]] = field(default_factory=dict)

    def is_active(self, config: Mapping[str, Any]) -> bool:
        return all(parent in config and config[parent] in allowed for parent, allowed in self.when.items())


@dataclass(frozen=True)
class Float(_Base):
    """A real parameter in ``[low, high]``, optionally log-scaled or quantised by ``step``.

    ``grid`` lists the values a grid search takes; without it a float cannot be gridded.
    """

    low: float = 0.0
    high: float = 1.0
    log: bool = False
    step: float | None = None
    grid: tuple[float, ...] | None = None

    def sample(self, rng: np.random.Generator) -> float:
        return self.from_unit(float(rng.random()))

    def from_unit(self, u: float) -> float:
        """Map ``u`` in [0, 1] onto the parameter (log-uniformly when ``log``), then onto its ``step``."""
        u = min(max(u, 0.0), 1.0)
        if u in (0.0, 1.0):  # the ends exactly (exp(log(x)) may miss x by an ulp)
            value = self.low if u == 0.0 else self.high
        elif self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return self.clip(value)

    def to_unit(self, value: float) -> float:
        """The point of [0, 1] that :meth:`from_unit` maps onto ``value`` (the inverse map).

        Log-scaled when ``log``; a value outside ``[low, high]`` maps to the nearer end (0 or 1);
        a one-value range maps to 0.5. For every value :meth:`from_unit` returns (any sample),
        ``from_unit(to_unit(value)) == value`` exactly: the computed point is moved by a few
        floating-point steps when rounding would miss the value.

        Raises:
            ValueError: ``value`` is not a number (a bool, a string, NaN).
        """
        value = min(max(_number(self.name, value), self.low), self.high)
        if self.high == self.low:
            return 0.5
        if self.log:
            u = (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        else:
            u = (value - self.low) / (self.high - self.low)
        u = min(max(u, 0.0), 1.0)
        if self.from_unit(u) == value:
            return u
        up = down = u
        for _ in range(_NUDGES):
            up, down = math.nextafter(up, 1.0), math.nextafter(down, 0.0)
            for candidate in (up, down):
                if self.from_unit(candidate) == value:
                    return candidate
        return u

    def clip(self, value: float) -> float:
        if self.step:
            value = self.low + round((value - self.low) / self.step) * self.step
        return float(min(max(value, self.low), self.high))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def grid_values(self) -> tuple[float, ...] | None:
        if self.grid is not None:
            return self.grid
        if self.step:
            n = int(round((self.high - self.low) / self.step)) + 1
            return tuple(self.clip(self.low + i * self.step) for i in range(n)) if n <= 1000 else None
        return None


@dataclass(frozen=True)
class Int(_Base):
    """An integer parameter in ``[low, high]`` (inclusive), optionally log-scaled, stepped by ``step``."""

    low: int = 0
    high: int = 1
    log: bool = False
    step: int = 1
    grid: tuple[int, ...] | None = None

    def sample(self, rng: np.random.Generator) -> int:
        return self.from_unit(float(rng.random()))

    def from_unit(self, u: float) -> int:
        u = min(max(u, 0.0), 1.0)
        if self.log:
            # Sample on [low - 0.5, high + 0.5] in log space so the end points are as likely as the rest.
            lo, hi = math.log(self.low - 0.4999), math.log(self.high + 0.4999)
            value = math.exp(lo + u * (hi - lo))
        else:
            value = self.low - 0.4999 + u * (self.high - self.low + 0.9998)
        return self.clip(value)

    def to_unit(self, value: float) -> float:
        """The point of [0, 1] that :meth:`from_unit` maps onto ``value`` (the inverse map).

        The same conventions as :meth:`from_unit`: the range widened by half a unit at each end
        (log-scaled when ``log``), so ``value`` itself is the point and it rounds back to
        ``value``; a value outside ``[low, high]`` maps to the nearer end's point; a one-value
        range maps to 0.5. ``from_unit(to_unit(value)) == value`` for every value of the parameter.

        Raises:
            ValueError: ``value`` is not a number (a bool, a string, NaN).
        """
        value = min(max(_number(self.name, value), self.low), self.high)
        if self.high == self.low:
            return 0.5
        if self.log:
            lo, hi = math.log(self.low - 0.4999), math.log(self.high + 0.4999)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.low + 0.4999) / (self.high - self.low + 0.9998)

    def clip(self, value: float) -> int:
        value = self.low + round((value - self.low) / self.step) * self.step
        return int(min(max(value, self.low), self.high))

    def contains(self, value: Any) -> bool:
        return bool(
            isinstance(value, (int, np.integer))
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def grid_values(self) -> tuple[int, ...] | None:
        if self.grid is not None:
            return self.grid
        n = (self.high - self.low) // self.step + 1
        return tuple(range(self.low, self.high + 1, self.step)) if n <= 1000 else None


@dataclass(frozen=True)
class Choice(_Base):
    """A categorical parameter taking one of ``values`` (any YAML scalars)."""

    values: tuple[Value, ...] = ()

    def sample(self, rng: np.random.Generator) -> Value:
        return self.values[int(rng.integers(len(self.values)))]

    def from_unit(self, u: float) -> Value:
        """The value whose bucket holds ``u``: [0, 1] cut into ``len(values)`` equal buckets, in order."""
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def index(self, value: Any) -> int:
        """The position of ``value`` in :attr:`values`: of the same type first (``True`` is not ``1``).

        Raises:
            ValueError: ``value`` is not one of :attr:`values`.
        """
        for i, v in enumerate(self.values):
            if type(v) is type(value) and v == value:
                return i
        for i, v in enumerate(self.values):
            if isinstance(v, bool) == isinstance(value, (bool, np.bool_)) and v == value:
                return i  # a numpy scalar, or 3.0 for 3
        raise ValueError(f"parameter {self.name!r}: {value!r} is not one of {list(self.values)}")

    def to_unit(self, value: Value) -> float:
        """The centre of ``value``'s bucket (the inverse of :meth:`from_unit`): ``(index + 0.5) / len(values)``.

        Raises:
            ValueError: ``value`` is not one of :attr:`values`.
        """
        return (self.index(value) + 0.5) / len(self.values)

    def contains(self, value: Any) -> bool:
        return value in self.values

    def grid_values(self) -> tuple[Value, ...]:
        return self.values


Param = Union[Float, Int, Choice]


class SearchSpace(Mapping[str, Param]):
    """An ordered, validated collection of parameters.

    Args:
        params: The parameters; conditions may only refer to :class:`Choice`
            parameters of the same space, and must not form cycles.

    Raises:
        ValueError: On a condition naming an unknown or non-choice parameter, a value the
            parent cannot take, or a cycle.
    """

    def __init__(self, params: list[Param] | tuple[Param, ...]) -> None:
        by_name = {p.name: p for p in params}
        if len(by_name) != len(params):
            raise ValueError("parameter names must be unique")
        for p in params:
            for parent, allowed in p.when.items():
                if parent not in by_name:
                    raise ValueError(f"{p.name}: condition names unknown parameter {parent!r}")
                q = by_name[parent]
                if not isinstance(q, Choice):
                    raise ValueError(f"{p.name}: condition parameter {parent!r} must be a choice")
                bad = [v for v in allowed if v not in q.values]
                if bad:
                    raise ValueError(f"{p.name}: {parent!r} never takes {bad}; its values are {list(q.values)}")
        # Parents before children: by level (0 without conditions, else 1 + the deepest parent's level), then in
        # the given order. Levels are found by an explicit-stack walk, linear in the parameters and conditions.
        level: dict[str, int] = {}
        for p in params:
            stack, seen = [p.name], {p.name}
            while stack:
                name = stack[-1]
                waiting = [parent for parent in by_name[name].when if parent not in level]
                if any(parent in seen for parent in waiting):
                    raise ValueError(f"conditions form a cycle among {sorted(seen)}")
                if waiting:
                    stack.append(waiting[0])
                    seen.add(waiting[0])
                    continue
                level[name] = 1 + max((level[parent] for parent in by_name[name].when), default=-1)
                stack.pop()
                seen.discard(name)
        order = sorted(range(len(params)), key=lambda i: (level[params[i].name], i))
        self._params: dict[str, Param] = {params[i].name: params[i] for i in order}

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self._params.values())!r})"

    @property
    def is_conditional(self) -> bool:
        return any(p.when for p in self._params.values())

    def active(self, config: Mapping[str, Any]) -> list[str]:
        """Names of the parameters that exist under ``config`` (in space order)."""
        out: dict[str, Any] = {}
        for name, p in self._params.items():
            if p.is_active(out):
                out[name] = config.get(name)
        return list(out)

    def sample(self, rng: np.random.Generator) -> dict[str, Value]:
        """Draw one config uniformly (log-uniformly for log parameters)."""
        config: dict[str, Value] = {}
        for name, p in self._params.items():
            if p.is_active(config):
                config[name] = p.sample(rng)
        return config

    def from_unit(self, vector: Mapping[str, float]) -> dict[str, Value]:
        """Build a config from values in [0, 1] per parameter; inactive ones are dropped."""
        config: dict[str, Value] = {}
        for name, p in self._params.items():
            if p.is_active(config):
                config[name] = p.from_unit(vector[name])
        return config

    def to_unit(self, config: Mapping[str, Any], *, inactive: float = 0.5) -> dict[str, float]:
        """Map a config back to [0, 1] per parameter: the inverse of :meth:`from_unit`.

        Every parameter of the space gets a value, in space order: an active one the point its
        own ``to_unit`` gives (floats and ints on their linear or log scale, a choice the centre of
        its value's bucket), an inactive one (its condition does not hold under ``config``; any
        value ``config`` gives it is ignored) ``inactive``, 0.5 by default: the centre, which
        :meth:`from_unit` never reads. ``from_unit(to_unit(config)) == config`` for every config
        the space contains (every sample, every config :meth:`from_unit` builds). Keys that are
        not parameters of the space are ignored; numbers outside a range map to its nearer end.

        Raises:
            ValueError: ``config`` lacks an active parameter, gives a choice a value it does not
                take or a number parameter something else; the message names the parameter.
        """
        vector: dict[str, float] = {}
        seen: dict[str, Any] = {}
        for name, p in self._params.items():
            if not p.is_active(seen):
                vector[name] = inactive
                continue
            if name not in config:
                raise ValueError(f"config lacks the active parameter {name!r} (it has {sorted(config)})")
            seen[name] = config[name]
            vector[name] = p.to_unit(config[name])
        return vector

    def contains(self, config: Mapping[str, Any]) -> bool:
        """True when ``config`` has exactly the active parameters, each inside its range."""
        active = self.active(config)
        return set(config) == set(active) and all(self._params[n].contains(config[n]) for n in active)

    def grid(self) -> Iterator[dict[str, Value]]:
        """Every config of the grid, inactive parameters left out and duplicates removed.

        Raises:
            ValueError: When a parameter has no finite grid (a float without ``grid`` or
                ``step``, or a range of over 1,000 values).
        """
        axes: list[tuple[str, tuple[Value, ...]]] = []
        for name, p in self._params.items():
            values = p.grid_values()
            if values is None:
                raise ValueError(
                    f"parameter {name!r} has no finite grid: give it `grid: [...]` values"
                    + (" or a `step`" if isinstance(p, Float) else " or a larger `step`")
                )
            axes.append((name, values))
        seen: set[tuple[tuple[str, Any], ...]] = set()
        for combo in itertools.product(*(values for _, values in axes)):
            full = dict(zip([n for n, _ in axes], combo))
            config = {n: full[n] for n in self.active(full)}
            key = tuple(config.items())
            if key not in seen:
                seen.add(key)
                yield config

    def grid_size(self) -> int:
        return sum(1 for _ in self.grid())
