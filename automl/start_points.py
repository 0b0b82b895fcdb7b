"""Starting points: a spec's ``start:`` configs and ``automl search --enqueue FILE``, checked against the space.

Start points run first, as trials 0, 1, ... (before the trainer's own low-cost starting points and before
the searcher is asked), and the searcher learns from their results like from any trial it did not suggest,
as with Optuna's ``enqueue_trial`` or Ray Tune's ``points_to_evaluate``. A point may leave parameters out:
those are filled by a seeded random draw from the space (the draw random search would make, with the run's
seed and the point's index), not by the searcher's model, so that ``automl validate`` shows the complete
configs that will run. A parameter outside the space, a value outside its range or not among its choices,
and a parameter that is inactive under the point's other values are refused, naming the file, the line and
the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import SpecError
from automl.space import Choice, Float, Int, Param, SearchSpace
from automl.spec import Spec, _bad_number, _dotted, _line_map
from automl.yaml_loader import DEFAULT_LIMITS, load_yaml

__all__ = ["StartFile", "check_start", "read_start_file", "recorded", "with_enqueued", "with_recorded"]

#: The key of ``run.json`` that keeps a run's ``--enqueue`` points (signed with it), so a resume runs them too.
RUN_KEY = "enqueued"


@dataclass(frozen=True)
class StartFile:
    """Start points read from an ``--enqueue`` file, with where each of them is written.

    Attributes:
        path: The file.
        points: The configs, in the file's order.
        lines: ``(index,)`` or ``(index, parameter)`` -> (line, column) in the file.
        offset: Index of its first point in the spec's ``start`` list once enqueued.
    """

    path: str
    points: tuple[Mapping[str, Any], ...]
    lines: Mapping[tuple[Any, ...], tuple[int, int]]
    offset: int = 0

    def error(self, message: str, index: int, *loc: Any) -> SpecError:
        """A :class:`SpecError` naming this file and the line of point ``index`` (or of its parameter)."""
        line, column = self.lines.get((index, *loc), self.lines.get((index,), (None, None)))
        field = f"[{index}]" + "".join(f".{part}" for part in loc)
        return SpecError(message, file=self.path, line=line, column=column, field=field)


def read_start_file(path: str | Path) -> StartFile:
    """Read an ``--enqueue`` file: a YAML (or JSON) list of configs, each a mapping of parameter to value.

    Read like a spec (:func:`automl.yaml_loader.load_yaml`: safe, within the spec's size and nesting limits,
    duplicate keys refused; every number finite).

    Raises:
        SpecError: The file is missing, not YAML/JSON, or not a list of mappings (with its line).
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the start points file {name!r}: {exc}", file=name) from exc
    data, node = load_yaml(text, name, DEFAULT_LIMITS)
    lines = _line_map(node) if node is not None else {}
    if not isinstance(data, list):
        raise SpecError("start points must be a list of configs, e.g. `- {x: 0.5, model: tree}`", file=name, line=1)
    bad = _bad_number(data)
    if bad is not None:
        line, column = lines.get(bad[0], (None, None))
        raise SpecError(bad[1], file=name, line=line, column=column, field=_dotted(bad[0]) or None)
    for i, point in enumerate(data):
        if not isinstance(point, dict) or not all(isinstance(k, str) for k in point):
            raise StartFile(name, (), lines).error("each start point must be a mapping of parameter: value", i)
    return StartFile(name, tuple(data), lines)


def with_enqueued(spec: Spec, start: StartFile) -> Spec:
    """``spec`` with the file's points after its own ``start:`` ones (``automl search --enqueue``)."""
    out = spec.model_copy(update={"start": [*spec.start, *(dict(p) for p in start.points)]})
    out._enqueued = StartFile(start.path, start.points, start.lines, offset=len(spec.start))
    return out


def recorded(spec: Spec) -> dict[str, Any] | None:
    """What ``run.json`` keeps of ``spec``'s ``--enqueue`` file (its path and points), None without one."""
    enqueued: StartFile | None = spec._enqueued
    if enqueued is None:
        return None
    return {"path": enqueued.path, "points": [dict(p) for p in enqueued.points]}


def with_recorded(spec: Spec, meta: Mapping[str, Any]) -> Spec:
    """``spec`` (a run's stored one, or the one given to ``--resume``) with the ``--enqueue`` points its run
    started with (``meta``: the run's ``run.json``), unless it has an ``--enqueue`` file of its own.

    The stored spec is the file's text, without the file's points: they are kept in ``run.json`` beside it, so
    a resume (``automl resume``, ``--resume`` without ``--enqueue``) numbers and runs the same start points.
    """
    kept = meta.get(RUN_KEY)
    if spec._enqueued is not None or not kept:
        return spec
    return with_enqueued(spec, StartFile(str(kept["path"]), tuple(kept["points"]), {}))


def check_start(spec: Spec, space: SearchSpace, seed: int) -> list[dict[str, Any]]:
    """The spec's start points (its ``start:`` and any ``--enqueue`` file), checked and completed.

    Raises:
        SpecError: For a parameter outside the space, a value out of range or not a choice, or a parameter set
            that is inactive under the point's other values; naming the file, the line and the field.
    """
    enqueued: StartFile | None = spec._enqueued

    def error(message: str, index: int, *loc: Any) -> SpecError:
        if enqueued is not None and index >= enqueued.offset:
            return enqueued.error(message, index - enqueued.offset, *loc)
        return spec.error(message, "start", index, *loc)

    return [_complete(point, space, np.random.default_rng([seed, i]), lambda m, *loc, i=i: error(m, i, *loc))
            for i, point in enumerate(spec.start)]


def _complete(point: Mapping[str, Any], space: SearchSpace, rng: np.random.Generator, error: Any) -> dict[str, Any]:
    """``point`` checked against ``space``, its missing active parameters drawn with ``rng``."""
    unknown = [name for name in point if name not in space]
    if unknown:
        raise error(f"start point: parameter {unknown[0]!r} is not in the space; its parameters: "
                    f"{', '.join(space)}", unknown[0])
    config: dict[str, Any] = {}
    for name in space:
        param = space[name]
        if not param.is_active(config):
            if name in point:
                raise error(f"start point: {name!r} is inactive here: it applies only when "
                            f"{_condition(param)}; leave it out of this point", name)
            continue
        if name not in point:
            config[name] = param.sample(rng)
            continue
        value = point[name]
        if not param.contains(value):
            raise error(f"start point: {value!r} is not a valid value of {name!r}: {_valid(param)}", name)
        config[name] = value
    return config


def _condition(param: Param) -> str:
    return " and ".join(f"{parent} is {' or '.join(repr(v) for v in allowed)}" for parent, allowed in param.when.items())


def _valid(param: Param) -> str:
    if isinstance(param, Choice):
        return f"one of {list(param.values)}"
    kind = "an integer" if isinstance(param, Int) else "a number"
    assert isinstance(param, (Float, Int))
    return f"{kind} in [{param.low:g}, {param.high:g}]"

