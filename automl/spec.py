"""The spec file: YAML read by :mod:`automl.yaml_loader` (a limited ``yaml.SafeLoader``), validated with pydantic.

Errors name the file, the line and column and the field path, and suggest the
closest valid key for a misspelled one. This module checks the spec's shape and
ranges; :mod:`automl.plan` then checks it against the installed plugins.

Naming: a model of one YAML section is ``*Section`` (``BudgetSection`` for ``budget:``);
``*Spec`` names only a plugin's record (:class:`automl.interfaces.SearcherSpec`), and ``Spec``
the whole file.
"""

from __future__ import annotations

import collections
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from automl.errors import SpecError
from automl.interfaces import Constraint
from automl.yaml_loader import DEFAULT_LIMITS, YamlLimits, load_yaml

__all__ = ["Spec", "load_spec", "parse_spec", "spec_json_schema"]

Scalar = Union[bool, int, float, str]
_MAX_DURATION = 365 * 86400.0
#: Seeds are numpy's: below 2**32.
SEED_LIMIT = 2**32
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a string such as ``90s``, ``10m``, ``2h``."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration: use seconds or a number with s, m, h or d (e.g. 10m)")
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be a positive number of seconds, got {_short(value)}")
    if seconds > _MAX_DURATION:  # Python's timers refuse timeouts past about 292 years
        raise ValueError(f"a duration is at most 365d, got {_short(value)}")
    return seconds


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


Duration = Annotated[float | str | None, Field(description="seconds, or a number with s, m, h or d (10m)")]


class _Strict(BaseModel):
    # NaN and infinities are refused in every float field (parse_spec refuses them in the whole document too).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _ParamBase(_Strict):
    when: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict,
        description="exists only when each named choice parameter takes the value (or one of the values) given",
    )


class FloatParam(_ParamBase):
    """A real parameter in [low, high]."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="sample log-uniformly (needs low > 0)")
    step: float | None = Field(None, gt=0, description="quantise to low + k * step")
    grid: list[float] | None = Field(None, min_length=1, description="values a grid search takes")

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.grid)
        return self


class IntParam(_ParamBase):
    """An integer parameter in [low, high], both included."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = Field(False, description="sample log-uniformly (needs low > 0)")
    step: PositiveInt = 1
    grid: list[int] | None = Field(None, min_length=1, description="values a grid search takes")

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.grid)
        return self


class ChoiceParam(_ParamBase):
    """A categorical parameter."""

    type: Literal["choice"]
    values: list[Scalar | None] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _unique(cls, values: list[Any]) -> list[Any]:
        counts = collections.Counter(values)  # == as list.count has it (1, 1.0 and true are one value), in O(n)
        dup = sorted({str(v) for v, n in counts.items() if n > 1})
        if dup:
            raise ValueError(f"values must be unique; repeated: {', '.join(dup)}")
        return values


def _check_range(low: float, high: float, log: bool, grid: list[Any] | None) -> None:
    if not math.isfinite(float(high) - float(low)):  # a sampler computes low + u * (high - low)
        raise ValueError(f"the range [{low}, {high}] is too wide: high - low must be a finite number")
    if low > high:
        raise ValueError(f"low ({low}) is greater than high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log scale needs low > 0, got low = {low}")
    if grid is not None:
        outside = [v for v in grid if not low <= v <= high]
        if outside:
            raise ValueError(f"grid values {outside} are outside [{low}, {high}]")


#: One entry of ``space:`` (a parameter), told apart by its ``type:``.
SpaceEntry = Annotated[FloatParam | IntParam | ChoiceParam, Field(discriminator="type")]


class DataSection(_Strict):
    """Where the rows come from and how they are split."""

    dataset: str | None = Field(None, description="a registered data set (automl plugins lists them), e.g. digits")
    csv: str | None = Field(None, description="a CSV file with a header row (relative to the spec file)")
    parquet: str | None = Field(None, description="a Parquet file (relative to the spec file)")
    images: str | None = Field(None, description="an image folder, one sub-folder per class (relative to the spec "
                               "file); options: size [h, w], channels 1 or 3, on_error fail or skip")
    target: str | None = Field(None, description="the target column of a CSV or Parquet file")
    options: dict[str, Any] = Field(default_factory=dict, description="options passed to the data set's loader")
    validation: float = Field(0.2, gt=0, lt=1, description="fraction of rows for validation (the objectives)")
    test: float = Field(0.2, ge=0, lt=1, description="fraction of rows held out for the test score")
    folds: Literal["auto"] | int | None = Field(
        "auto", description="k-fold cross-validation over the train and validation rows (stratified for "
        "classification) instead of the single validation split, for trainers that support it; 0 or null: the "
        "validation split; auto (default): 5 folds for a table small for its `budget.wall_time` (FLAML's rule: "
        "rows x columns below 10 million per hour of wall time, under 100,000 rows), else the validation split",
    )
    repeats: Literal["auto"] | int = Field(
        "auto", description="rounds of the k folds, each shuffled anew (repeated cross-validation: every trial is "
        "scored on folds x repeats fits); 1: the folds once; auto (default): 3 for a table of at most 2,000 rows "
        "under a wall time of 300s or more (where thousands of trials would be chosen on one set of folds), else 1",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        if sum(source is not None for source in (self.dataset, self.csv, self.parquet, self.images)) != 1:
            raise ValueError("give exactly one of `dataset:`, `csv:`, `parquet:` or `images:`")
        if (self.csv is not None or self.parquet is not None) and not self.target:
            raise ValueError(f"a {'CSV' if self.csv is not None else 'Parquet'} source needs `target:` naming its target column")
        if self.validation + self.test >= 0.9:
            raise ValueError("validation + test must leave at least 10% of the rows for training")
        return self

    @field_validator("folds")
    @classmethod
    def _folds(cls, value: Any) -> Any:
        if isinstance(value, int) and value in (1,) or isinstance(value, int) and value < 0:
            raise ValueError(f"folds is {value}: give 2 or more folds, 0 (the validation split) or auto")
        return value

    @field_validator("repeats")
    @classmethod
    def _repeats(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"repeats is {value}: give 1 or more rounds of the folds, or auto")
        return value


class TrainerSection(_Strict):
    name: str = Field(description="a registered trainer, e.g. sklearn")
    params: dict[str, Any] = Field(default_factory=dict, description="fixed parameters passed to every trial")


class SearcherSection(_Strict):
    name: str = Field("auto", description="a registered searcher (automl plugins lists them), or auto: with "
                      "budget.wall_time and one objective the first installed of learners, blendsearch, cfo, tpe, "
                      "random; otherwise random")
    options: dict[str, Any] = Field(default_factory=dict, description="the searcher's own options")
    seed: int | None = Field(
        None, ge=0, lt=SEED_LIMIT, description="the searcher's own seed (default: the spec's seed); another value repeats a search "
        "in another order on the same data split and trial seeds")


class SchedulerSection(_Strict):
    name: str = Field("fifo", description="trial scheduler: fifo, asha, moasha, median (automl plugins lists them)")
    options: dict[str, Any] = Field(default_factory=dict, description="the scheduler's options (grace_period...)")


class CompressionStep(_Strict):
    """One compressor of the ``compression`` list, applied to each trial's trained model."""

    name: str = Field(description="a registered compressor (automl plugins lists them), e.g. prune, quantize")
    params: dict[str, Any] = Field(
        default_factory=dict, description="its fixed parameters; searched ones are space entries NAME.PARAM"
    )


class FrontSection(_Strict):
    include_stopped: bool = Field(
        False, description="also put early-stopped trials (at the budget they reached) on the front"
    )


class ModelsSection(_Strict):
    """Which trials export their model (an export costs time: with small models, as much as the fit)."""

    export: Literal["auto", "all", "top"] = Field(
        "auto", description="all: every completed trial; top: only a trial whose first objective is among the `top` "
        "best completed so far when it ends (the best trial always is; trials far from it keep their metrics but no "
        "model); auto: top for a search under a wall time with one objective the trainer reports, else all")
    top: PositiveInt = Field(10, le=100000, description="how many of the best trials so far a new trial must be "
                             "among to export its model, with export: top")


class EnsembleSection(_Strict):
    """The ensemble built from the completed trials at the end of a search (greedy selection, Caruana et al. 2004)."""

    enabled: bool | None = Field(
        None, description="build it (default: when the trainer can build ensembles, and the spec has no compression)"
    )
    rounds: PositiveInt = Field(25, le=1000, description="greedy additions (with replacement) after the best single trial")
    candidates: PositiveInt = Field(
        20, ge=2, le=1000, description="only the N best completed trials on the first trainer objective are candidates"
    )


class ObjectiveSection(_Strict):
    metric: str = Field(description="a metric the trainer reports, or latency_ms / size_bytes")
    mode: Literal["min", "max"] = Field(description="min or max")
    reference: float | None = Field(None, description="hypervolume reference value (worst value that counts)")


class BudgetSection(_Strict):
    trials: PositiveInt | None = Field(
        None, description="number of trials (default: 20; with wall_time, as many as the wall time allows)")
    wall_time: Duration = Field(
        None, description="the search's time budget, counted from its start (Ray's start-up included): no trial "
        "starts that similar trials show cannot finish in the time left, and trials still running when it ends are "
        "stopped with their best step kept (at least 15s)")
    trial_timeout: Duration = Field(None, description="fail a trial that runs longer than this")
    max_failures: int = Field(0, ge=0, description="retry a failed trial up to this many times")
    target: float | None = Field(
        None, description="end the search once a full-budget trial reaches this value of the first objective"
    )

    @field_validator("wall_time", "trial_timeout")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return parse_duration(value)


class ResourcesSection(_Strict):
    cpu: float = Field(1.0, gt=0, description="CPUs per trial (fractions allowed)")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial (fractions allowed)")
    max_concurrent: PositiveInt | None = Field(None, description="at most this many trials at once")


class LatencySection(_Strict):
    batch_size: PositiveInt = Field(1, description="batch size of the latency measurement")
    warmup: int = Field(10, ge=0, description="calls before timing, in trials")
    repeats: PositiveInt = Field(50, description="timed calls in trials (median taken)")
    final_repeats: PositiveInt = Field(200, description="timed calls when the front is measured again")


class Spec(_Strict):
    """A search: data, task, trainer, searcher, space, objectives and budget."""

    name: str | None = Field(None, description="a name for the run (defaults to the file name)")
    task: Literal["classification", "regression"] | None = Field(None, description="classification or regression (required with data)")
    data: DataSection | None = Field(None, description="the rows to learn from (not needed by the function trainer)")
    trainer: TrainerSection
    searcher: SearcherSection = Field(default_factory=SearcherSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    space: dict[str, SpaceEntry] | None = Field(
        None, description="the parameters to search; omitted or `auto`: the trainer's default space for the data"
    )
    objectives: list[ObjectiveSection] | None = Field(
        None, min_length=1, description="primary objective first (default: the trainer's first metric, e.g. accuracy)"
    )
    constraints: list[str] = Field(default_factory=list, description="bounds such as `latency_ms <= 2`")
    compression: list[CompressionStep] = Field(
        default_factory=list, description="compressors applied in order to each trained model before it is measured"
    )
    budget: BudgetSection = Field(default_factory=BudgetSection)
    start: list[dict[str, Scalar | None]] = Field(
        default_factory=list, max_length=10000,
        description="configs to evaluate first, in order (parameter: value; parameters left out are drawn at random, "
        "seeded); the searcher learns from their results")
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    latency: LatencySection = Field(default_factory=LatencySection)
    front: FrontSection = Field(default_factory=FrontSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    ensemble: EnsembleSection = Field(
        default_factory=EnsembleSection, description="an ensemble of the completed trials, recorded as one more trial"
    )
    seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="seed of the data split, the trials and the searcher "
                      "(below 2**32)")
    store: str | None = Field(None, description="SQLAlchemy URL of the results store (default: RUN_DIR/automl.db)")

    _source: str | None = PrivateAttr(None)
    _lines: dict[tuple[Any, ...], tuple[int, int]] = PrivateAttr(default_factory=dict)
    _text: str = PrivateAttr("")
    #: Start points added by ``automl search --enqueue FILE`` (an :class:`automl.start_points.StartFile`), or None.
    _enqueued: Any = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name_one_component(cls, value: str | None) -> str | None:
        # The default run directory is runs/NAME-TIMESTAMP: a name must not place it elsewhere.
        if value is not None and (value.strip() in ("", ".", "..") or any(c in value for c in "/\\\0")):
            raise ValueError(f"{value!r} is not a run name: use letters, digits, '-', '_' or '.', without '/' or "
                             "'\\' (it names the directory runs/NAME-TIMESTAMP)")
        return value

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, values: list[str]) -> list[str]:
        for v in values:
            m = _CONSTRAINT.match(str(v))
            if not m:
                raise ValueError(f"{v!r} is not a constraint: write `METRIC <= NUMBER` (or <, >=, >)")
            if not math.isfinite(float(m.group(3))):
                raise ValueError(f"{v!r}: the bound {m.group(3)} is not a finite number")
        return values

    @field_validator("space", mode="before")
    @classmethod
    def _space_auto(cls, value: Any) -> Any:
        if value == "auto":
            return None  # the trainer's default space, as when `space:` is omitted
        if isinstance(value, str):
            raise ValueError(f"space must be a mapping of parameters, or `auto` for the trainer's default; got {value!r}")
        if isinstance(value, dict) and not value:
            raise ValueError("space is empty: list the parameters to search, or omit it (or write `space: auto`) "
                             "for the trainer's default space")
        return value

    @model_validator(mode="after")
    def _objectives_unique(self) -> Spec:
        names = [o.metric for o in self.objectives or []]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"objective(s) {dup} appear more than once")
        return self

    @field_validator("compression")
    @classmethod
    def _compressors_unique(cls, steps: list[CompressionStep]) -> list[CompressionStep]:
        names = [s.name for s in steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            # `<name>.<param>` space entries must say which compressor they belong to.
            raise ValueError(f"compressor(s) {dup} appear more than once: list each compressor once")
        return steps

    def parsed_constraints(self) -> list[Constraint]:
        out = []
        for text in self.constraints:
            m = _CONSTRAINT.match(text)
            assert m  # checked by the validator above
            out.append(Constraint(m.group(1), m.group(2), float(m.group(3))))  # type: ignore[arg-type]
        return out

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def text(self) -> str:
        """The YAML the spec was read from (stored with the run)."""
        return self._text

    def base_dir(self) -> Path:
        return Path(self._source).parent if self._source else Path.cwd()

    def error(self, message: str, *loc: Any) -> SpecError:
        """A :class:`SpecError` pointing at ``loc`` (a field path) in the file."""
        line, col = _locate(self._lines, loc)
        return SpecError(message, file=self._source, line=line, column=col, field=_dotted(loc) or None)


# -- loading --------------------------------------------------------------------------


def _line_map(node: yaml.Node, path: tuple[Any, ...] = (), out: dict | None = None) -> dict:
    """Map each field path to the (line, column) where it stands in the file, 1-based."""
    out = {} if out is None else out
    out.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            out[sub] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _line_map(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _line_map(item, (*path, i), out)
    return out


#: Integers in a spec fit in 64 bits (numpy's and the store's integers); seeds in 32.
_INT_LIMIT = 2**63


def _bad_number(data: Any) -> tuple[tuple[Any, ...], str] | None:
    """The first number in ``data`` (document order) that is NaN, infinite or too large, and why.

    Every number of a spec, plugin options included: NaN passes every comparison and an
    infinity every bound, so either would reach a searcher, a timer or ``front.json``.
    """
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return loc, f"{value} is not a finite number: NaN and infinities are refused in a spec"
        if isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
            return loc, f"{value} is out of range: an integer in a spec is below 2**63 in absolute value"
        if isinstance(value, dict):
            stack.extend(((*loc, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*loc, i), v) for i, v in reversed(list(enumerate(value))))
    return None


def _clean_loc(lines: dict, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the parts pydantic adds (union tags) that are not keys of the file."""
    kept: tuple[Any, ...] = ()
    for part in loc:
        is_tag = part in ("float", "int", "choice") or "[" in str(part) or str(part).startswith("function-")
        if (*kept, part) in lines or not is_tag:
            kept = (*kept, part)
    return kept


def _locate(lines: dict, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None, None


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(tp: Any) -> list[Any]:
    """The concrete model classes / containers a (possibly Optional, Annotated) type stands for."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _allowed_keys(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Field names valid at ``loc`` (walking the models with the data to pick union members)."""
    candidates: list[Any] = [Spec]
    for part in loc:
        data = data.get(part) if isinstance(data, dict) else (data[part] if isinstance(data, list) and isinstance(part, int) and part < len(data) else None)
        nxt: list[Any] = []
        for c in candidates:
            if isinstance(c, type) and issubclass(c, BaseModel):
                if part in c.model_fields:
                    nxt += _unwrap(c.model_fields[part].annotation)
            elif typing.get_origin(c) in (dict, list):
                nxt += _unwrap(typing.get_args(c)[-1])
        if isinstance(data, dict) and "type" in data:
            typed = [c for c in nxt if isinstance(c, type) and issubclass(c, BaseModel) and "type" in c.model_fields
                     and data["type"] in typing.get_args(c.model_fields["type"].annotation)]
            nxt = typed or nxt
        candidates = nxt
    keys: list[str] = []
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            keys += [k for k in c.model_fields if k not in keys]
    return keys


def _message(err: dict[str, Any], loc: tuple[Any, ...], data: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        msg = f"unknown key {loc[-1]!r}"
        if close:
            msg += f"; did you mean {close[0]!r}?"
        return msg + (f" Valid keys here: {', '.join(allowed)}" if allowed else "")
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return "each parameter needs `type:` float, int or choice"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if "input" in err and kind not in ("value_error", "assertion_error") and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    return msg


def parse_spec(text: str, source: str | None = None, limits: YamlLimits = DEFAULT_LIMITS) -> Spec:
    """Validate spec ``text``; ``source`` is the file name used in messages.

    The text is read by :func:`automl.yaml_loader.load_yaml` within ``limits`` (size, nesting,
    aliases; duplicate keys refused), and every number in it must be finite and fit in 64 bits.

    Raises:
        SpecError: For YAML syntax errors and broken limits (with line and column) and every
            validation error (with line, column and field path; the first one is raised, all are
            listed in its message).
    """
    data, node = load_yaml(text, source, limits)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a YAML mapping (key: value lines)", file=source, line=1)
    lines = _line_map(node) if node is not None else {}
    bad = _bad_number(data)
    if bad is not None:
        loc, message = bad
        line, col = _locate(lines, loc)
        raise SpecError(message, file=source, line=line, column=col, field=_dotted(loc) or None)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        ranked: list[tuple[int, bool, int, SpecError]] = []
        for err in exc.errors():
            loc = _clean_loc(lines, tuple(err["loc"]))
            line, col = _locate(lines, loc)
            found = SpecError(_message(dict(err), loc, data), file=source, line=line, column=col, field=_dotted(loc))
            # A misspelled key explains the "missing" error it causes on the same line: show it first.
            ranked.append((line or 0, err["type"] != "extra_forbidden", col or 0, found))
        ranked.sort(key=lambda e: e[:3])
        errors = [e[3] for e in ranked]
        first = errors[0]
        if len(errors) > 1:
            first.message += "\n" + "\n".join(f"  also {e.format()}" for e in errors[1:])
            first.args = (first.format(),)
        raise first from None
    spec._source = source
    spec._lines = lines
    spec._text = text
    return spec


def load_spec(path: str | Path, limits: YamlLimits = DEFAULT_LIMITS) -> Spec:
    """Read and validate a spec file.

    Raises:
        SpecError: The file is missing or unreadable, or the spec is invalid.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec file {str(p)!r} does not exist" if not p.exists() else f"{str(p)!r} is not a file")
    try:
        if p.stat().st_size > limits.max_bytes:  # refused before it is read
            raise SpecError(f"the spec is larger than {limits.max_bytes:,} bytes; a spec holds settings, not data "
                            "(name a data file in `data:` instead)", file=str(p))
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {str(p)!r}: {exc}") from exc
    return parse_spec(text, str(p), limits)


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec, for editor completion."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "automl search spec"
    return schema
