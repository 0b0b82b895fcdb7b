"""``automl export``: the model a completed trial measured, in a format its trainer declares.

An export is the model that was measured, or it is refused with the reason. A trial's
measured model is the file its latency, size and (after a compressor rewrote it) metrics
were measured on: the store's ``artifact``, copied into ``RUN_DIR/models/`` for a front
member. Any completed trial whose file was kept can be exported, front member or not.

The formats come from the trial's trainer (:attr:`~automl.interfaces.Trainer.formats`:
format name -> file name endings; a trainer that declares none gets :data:`COMMON_FORMATS`):

- the measured file's own format is a byte-for-byte copy, nothing loaded;
- another file the trainer wrote in the same export (the torch trainer writes ONNX and
  TorchScript side by side) is the same model and is copied too, unless the spec has a
  compressor that may rewrite the export (``compress_artifact``): such a file may hold the
  model before compression, and which files were rewritten is not recorded, so it is refused;
- a format the trainer's :attr:`~automl.interfaces.Trainer.conversions` list is written
  by its :meth:`~automl.interfaces.Trainer.convert` from one of those files: the trainer
  is rebuilt with the trial's config, params and data (loaded again from the run's spec),
  loads the file as safely as its predictor does, writes the new format and checks that it
  predicts what the source predicts.

A trial below the ``models.export: top`` bar kept its metrics but no model, and a stopped
or failed trial has none: such an export is refused with the reason, never re-fitted (a
re-fit is another model than the one measured).

Only a run signed with this user's key is exported (:mod:`automl.trust`): its ``run.json`` and
stored spec are checked before the spec is read (a conversion imports what it names), and the
file copied or converted before it is read; ``trust=True`` (``--trust``) exports another's run.
A file outside the run directory, or reached through a symbolic link, is never read.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError
from automl.run import Run

__all__ = ["COMMON_FORMATS", "FORMATS", "Exported", "TrialModel", "available_formats", "convertible_formats",
           "export_trial", "format_of", "run_plan", "trainer_formats", "trial_model", "trial_trainer"]

#: Format name -> file name endings, for a trainer that declares no :attr:`~automl.interfaces.Trainer.formats`.
COMMON_FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "torchscript": (".torchscript.pt", ".torchscript"),
    "skops": (".skops",),
}
#: The earlier name of :data:`COMMON_FORMATS`.
FORMATS = COMMON_FORMATS


@dataclass(frozen=True)
class Exported:
    """A written export.

    Attributes:
        number: The trial number.
        format: A format of the trial's trainer (``onnx``, ``skops``, ``lightgbm``...).
        source: The trial's file it was copied or converted from.
        path: The file written.
        size_bytes: Its size.
        sha256: Its SHA-256, to compare with the source.
        converted_from: The source's format when the trainer converted it; None for a copy.
    """

    number: int
    format: str
    source: Path
    path: Path
    size_bytes: int
    sha256: str
    converted_from: str | None = None


@dataclass(frozen=True)
class TrialModel:
    """What ``automl export`` can write for one completed trial.

    Attributes:
        number: The trial number.
        trainer: The trial's trainer name.
        measured: The file that was measured (the copy in ``models/`` when there is one).
        formats: Every format the trainer declares, with its file name endings.
        files: Formats of the measured model the trial has a file for, each with that file.
        conversions: Formats the trainer can convert one of ``files`` to: ``{format: from format}``.
        withheld: Formats the trial has a file for that is not the measured model, with the reason.
        note: Why nothing can be converted (the run's spec no longer builds), or empty.
    """

    number: int
    trainer: str
    measured: Path
    formats: Mapping[str, tuple[str, ...]]
    files: Mapping[str, Path]
    conversions: Mapping[str, str] = field(default_factory=dict)
    withheld: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    def offered(self) -> list[str]:
        """The formats this trial can be exported in: its files' first, then conversions."""
        return [*self.files, *(f for f in self.conversions if f not in self.files)]


def trainer_formats(factory: Any) -> dict[str, tuple[str, ...]]:
    """The formats a trainer class declares (:attr:`Trainer.formats`), else :data:`COMMON_FORMATS`."""
    declared = getattr(factory, "formats", None)
    if not declared:
        return dict(COMMON_FORMATS)
    return {str(name): tuple(endings) for name, endings in declared.items()}


def format_of(path: Path | str, formats: Mapping[str, tuple[str, ...]] = COMMON_FORMATS) -> str | None:
    """The format whose longest file name ending matches ``path`` (``.torchscript.pt`` before ``.pt``), or None."""
    name = Path(path).name.lower()
    best: tuple[int, str] | None = None
    for fmt, endings in formats.items():
        for ending in endings:
            if name.endswith(ending.lower()) and (best is None or len(ending) > best[0]):
                best = (len(ending), fmt)
    return best[1] if best else None


def _get(row: Any, key: str) -> Any:
    """A field of a store row: a mapping, or a record with attributes."""
    value = row.get(key) if isinstance(row, Mapping) else getattr(row, key, None)
    return getattr(value, "value", value)  # an enum status as its string


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _spec_of(run: Run) -> Any:
    from automl.plan import run_spec

    return run_spec(run)


def _trainer_record(run: Run) -> tuple[str, Any, Any, str]:
    """The run's spec, trainer name and record (None with the reason when it cannot be had)."""
    from automl.plugins import get_plugin_manager

    try:
        spec = _spec_of(run)
    except AutoMLError as exc:
        return "?", None, None, f"the run's spec no longer parses: {exc}"
    try:
        return spec.trainer.name, spec, get_plugin_manager().trainers.get(spec.trainer.name), ""
    except AutoMLError as exc:
        # A trainer gone since the search: say which package==version the store recorded it from.
        recorded = (_get(run.info(), "versions") or {}).get(f"trainer:{spec.trainer.name}")
        why = get_plugin_manager().unusable("trainer", spec.trainer.name, recorded) if recorded else None
        return spec.trainer.name, spec, None, f"the run used it from {recorded}; {why}" if why else str(exc)


def _measured_file(run: Run, number: int, stored: str) -> Path | None:
    """The measured file, found in the run directory only (a moved run's stored path may name another run's
    file): its copy in ``models/``, else the file in the trial's directory; never through a symbolic link."""
    from automl.trust import inside as within

    stored_path = Path(stored)
    trial_dir = run.dir / "trials" / f"{number:05d}"
    inside = stored_path.parts[stored_path.parts.index(f"{number:05d}") + 1:] \
        if f"{number:05d}" in stored_path.parts else (stored_path.name,)
    for path in (run.dir / "models" / f"trial-{number:05d}-{stored_path.name}", trial_dir.joinpath(*inside)):
        found = within(run.dir, path)
        if found is not None and found.is_file():
            return path
        if found is None and (path.exists() or path.is_symlink()):
            raise AutoMLError(f"trial {number}'s model file {str(path)!r} is outside the run directory or reached "
                              "through a symbolic link: export never follows one out of the run directory")
    return None


def trial_model(run: Run, number: int) -> TrialModel:
    """What trial ``number`` of ``run`` can be exported as.

    Raises:
        AutoMLError: For a trial that does not exist, did not complete, or whose model file was
            not kept (the message says why).
    """
    row = _completed_row(run, number)
    name, spec, record, problem = _trainer_record(run)
    formats = trainer_formats(record.factory) if record is not None else dict(COMMON_FORMATS)
    stored = _get(row, "artifact")
    if not stored:
        measured_as = _get(row, "measured_as") or {}
        reason = measured_as.get("model") if isinstance(measured_as, Mapping) else None
        raise AutoMLError(
            f"trial {number}'s model was not kept ({reason or f'the {name!r} trainer wrote no model file'}); an "
            "export is the model that was measured, so there is none to write (a model fitted again would be another)")
    measured = _measured_file(run, number, str(stored))
    if measured is None:
        raise AutoMLError(f"trial {number}'s model file {Path(str(stored)).name!r} is neither in "
                          f"{str(run.dir / 'models')!r} nor in {str(run.dir / 'trials' / f'{number:05d}')!r} "
                          "(removed, or the run was copied without it)")
    files: dict[str, Path] = {}
    withheld: dict[str, str] = {}
    own = format_of(Path(str(stored)).name, formats)
    if own is not None:
        files[own] = measured
    siblings = _siblings(run, number, Path(str(stored)), formats)
    rewriters = _rewriters(spec)
    for fmt, path in siblings.items():
        if fmt in files:
            continue
        if rewriters:
            # A compressor that rewrites the export leaves the trainer's own files beside the new
            # one: they hold the model before compression. Which files it rewrote is not recorded,
            # so beside such a compressor only the measured file itself counts.
            withheld[fmt] = (f"{path.name} may hold the model before the compression "
                             f"({', '.join(rewriters)} may rewrite the export); only the measured "
                             f"{Path(str(stored)).name} is the model measured")
        elif own is None:
            withheld[fmt] = f"{path.name} is not the measured file {Path(str(stored)).name}"
        else:
            files[fmt] = path
    conversions: dict[str, str] = {}
    note = problem
    if record is not None:
        for target, sources in (getattr(record.factory, "conversions", None) or {}).items():
            have = [s for s in sources if s in files]
            if target not in files and have:
                conversions[target] = have[0]
    return TrialModel(number, name, measured, formats, files, conversions, withheld, note)


def _completed_row(run: Run, number: int) -> Any:
    """Trial ``number``'s store row; refused, saying why, unless that trial completed."""
    row = run.store.trial(run.run_id, number)
    if row is None:
        numbers = [int(_get(t, "number")) for t in run.trials()]
        span = f"trials {min(numbers)}..{max(numbers)}" if numbers else "no trials"
        raise AutoMLError(f"{str(run.dir)!r} has no trial {number} (it has {span})")
    status = str(_get(row, "status"))
    if status != "completed":
        why = {"stopped": f"stopped at budget {_get(row, 'budget') or 0} of {_get(row, 'max_budget') or '?'}",
               "failed": "failed"}.get(status, status)
        error = _get(row, "error")
        raise AutoMLError(f"trial {number} {why}{': ' + str(error) if error else ''}; only a completed trial has "
                          "a measured model to export")
    return row


def _rewriters(spec: Any) -> list[str]:
    """The spec's compressors that may rewrite the exported file (override ``compress_artifact``,
    or cannot be looked up any more)."""
    from automl.interfaces import Compressor
    from automl.plugins import get_plugin_manager

    out = []
    for step in getattr(spec, "compression", None) or []:
        try:
            factory = get_plugin_manager().compressors.get(step.name).factory
        except AutoMLError:
            out.append(step.name)
            continue
        if getattr(factory, "compress_artifact", None) is not Compressor.compress_artifact:
            out.append(step.name)
    return out


def _siblings(run: Run, number: int, stored: Path, formats: Mapping[str, tuple[str, ...]]) -> dict[str, Path]:
    """Files in the trial directory in a declared format, other than the measured one, by format (first by name)."""
    directory = run.dir / "trials" / f"{number:05d}"
    out: dict[str, Path] = {}
    if directory.is_dir():
        for path in sorted(p for p in directory.iterdir()
                           if p.is_file() and not p.is_symlink() and p.name != stored.name):
            fmt = format_of(path, formats)
            if fmt is not None and fmt not in out:
                out[fmt] = path
    return out


def available_formats(run: Run, number: int) -> dict[str, Path]:
    """The formats of trial ``number``'s measured model it has a file for, each with that file."""
    return dict(trial_model(run, number).files)


def convertible_formats(run: Run, number: int) -> dict[str, str]:
    """Formats trial ``number`` has no file for but its trainer can convert to: ``{format: from format}``."""
    return dict(trial_model(run, number).conversions)


def export_trial(run_dir: str | Path, number: int, fmt: str, out: str | Path | None = None, *,
                 trust: bool = False) -> Exported:
    """Write completed trial ``number``'s measured model in format ``fmt`` to ``out``: a copy of its file
    in that format, or else a conversion by its trainer from a file of the measured model.

    Args:
        run_dir: The run directory.
        number: A completed trial whose model file was kept (front member or not).
        fmt: A format the trial's trainer declares (``automl export`` lists them on a bad one).
        out: A file, or a directory (created) to write ``trial-NNNNN<ending>`` into;
            default ``RUN_DIR/exports/``.
        trust: Export from a run not signed with this user's key (:mod:`automl.trust`).

    Raises:
        UntrustedRunError: For a run (or the file to export) not signed with this user's key, without
            ``trust``; for a file outside the run directory or reached through a symbolic link, always.
        AutoMLError: For a format the trainer does not declare (the message lists those it does),
            a trial that does not exist, did not complete or kept no model, or a format this
            trial's measured model neither has nor converts to (the message says what it has).
    """
    from automl.trust import check_file, check_run

    run = Run.open(run_dir)
    name, _, record, problem = _trainer_record(run)  # the stored spec parsed and the trainer looked up: no import
    formats = trainer_formats(record.factory) if record is not None else dict(COMMON_FORMATS)
    if fmt not in formats:
        whose = f"the {name!r} trainer's formats" if record is not None else \
            f"formats (the {name!r} trainer is not available: {problem})"
        raise AutoMLError(f"unknown export format {fmt!r}; {whose}: {', '.join(formats)}")
    check_run(run, "export", trust=trust)  # before any file is read or the plan built (it imports what it names)
    model = trial_model(run, number)
    if fmt in model.files:
        source = model.files[fmt]
        check_file(run.dir, source, "export", trust=trust)
        target = _target(run, number, _ending(source, model.formats[fmt]), out)
        if target.resolve() != source.resolve():
            shutil.copyfile(source, target)
        return Exported(number, fmt, source, target, target.stat().st_size, _sha256(target))
    if fmt in model.conversions:
        check_file(run.dir, model.files[model.conversions[fmt]], "export", trust=trust)
        return _convert(run, model, fmt, out)
    listed = ", ".join([*model.files, *(f"{f} (converted from {s})" for f, s in model.conversions.items())])
    why = f"; {fmt}: {model.withheld[fmt]}" if fmt in model.withheld else \
        f" (the {model.trainer!r} trainer cannot convert {', '.join(model.files) or 'nothing'} to {fmt})"
    if model.note and fmt not in model.withheld:
        why += f" (nothing can be converted: {model.note})"
    raise AutoMLError(f"trial {number} has no {fmt} export; formats available for this trial: "
                      f"{listed or 'none (its model file ' + model.measured.name + ' is in no format the trainer declares)'}"
                      f"{why}")


def _ending(path: Path, endings: tuple[str, ...]) -> str:
    name = path.name.lower()
    matching = [e for e in endings if name.endswith(e.lower())]
    return max(matching, key=len) if matching else path.suffix


def _target(run: Run, number: int, ext: str, out: str | Path | None) -> Path:
    from automl.trust import inside

    target = Path(out) if out is not None else run.dir / "exports"
    if out is None and inside(run.dir, target) is None:
        raise AutoMLError(f"{str(target)!r} is a symbolic link: a run directory's exports/ is never followed out "
                          "of it; pass --out")
    if out is None or target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        target = target / f"trial-{number:05d}{ext}"
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():  # writing through it would overwrite whatever it points at
        raise AutoMLError(f"{str(target)!r} is a symbolic link; remove it or choose another --out")
    return target


def run_plan(run: Run) -> Any:
    """The run's plan, built again from the spec it ran with the installed plugins (:func:`automl.plan.run_plan`)."""
    from automl.plan import run_plan as plan_of

    return plan_of(run)


def trial_trainer(run: Run, row: Any, plan: Any = None, data: Any = None) -> Any:
    """The run's trainer for one trial, as the engine built it, but not fitted: to load or convert its files.

    Args:
        run: The run.
        row: The trial's store row (its number and config).
        plan: The run's plan (from the spec it ran); default: built again.
        data: The run's data, loaded and split again; default: loaded from ``plan``.
    """
    if plan is None:
        plan = run_plan(run)
    if data is None:
        data = plan.load_data()
    return plan.trial_trainer(int(_get(row, "number")), _get(row, "config") or {}, run.dir, data)


def _convert(run: Run, model: TrialModel, fmt: str, out: str | Path | None) -> Exported:
    from automl.errors import TrialError

    number = model.number
    source_fmt = model.conversions[fmt]
    source = model.files[source_fmt]
    try:
        plan = run_plan(run)
    except AutoMLError as exc:
        raise AutoMLError(f"trial {number} has no {fmt} export; formats available for this trial: "
                          f"{', '.join(model.files)} (none can be converted: the run's spec no longer builds: "
                          f"{exc})") from exc
    trainer = trial_trainer(run, run.store.trial(run.run_id, number), plan)
    with tempfile.TemporaryDirectory(prefix="automl-export-") as tmp:
        try:
            made = Path(trainer.convert(source, fmt, Path(tmp)))
        except (NotImplementedError, ValueError, TrialError) as exc:
            raise AutoMLError(f"trial {number}: the {model.trainer!r} trainer cannot convert {source.name} "
                              f"({source_fmt}) to {fmt}: {exc}") from exc
        if format_of(made, model.formats) != fmt or not made.is_file():
            raise AutoMLError(f"trial {number}: the {model.trainer!r} trainer's convert() returned {str(made)!r}, "
                              f"not a {fmt} file (endings {', '.join(model.formats[fmt])})")
        target = _target(run, number, _ending(made, model.formats[fmt]), out)
        shutil.copyfile(made, target)
    return Exported(number, fmt, source, target, target.stat().st_size, _sha256(target), converted_from=source_fmt)
