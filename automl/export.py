"""``automl export``: a front member's model in any format its trainer wrote or can convert to.

Trainers write their exports into the trial's directory (``RUN_DIR/trials/NNNNN/``) and the
engine copies the measured one into ``RUN_DIR/models/``: the torch trainer writes ONNX and
TorchScript side by side, the scikit-learn trainer skops or ONNX (``params.export``), the
``function`` trainer no model at all.

A format the trial has is copied: nothing is loaded, so the copy is byte for byte what was
validated and measured. Another format is produced by the trainer's
:meth:`~automl.interfaces.Trainer.convert` from a file the trial has, when the trainer's
``conversions`` list it (scikit-learn: skops to ONNX with skl2onnx; torch: TorchScript to
ONNX): the trainer is rebuilt with the trial's config, params and data (loaded again from the
run's spec), loads the file as safely as its predictor does, writes the new format and checks
that it predicts what the source predicts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError
from automl.run import Run

__all__ = ["FORMATS", "Exported", "available_formats", "convertible_formats", "export_trial", "run_plan",
           "trial_trainer"]

#: Format name -> file name endings that hold it (checked in order).
FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "torchscript": (".torchscript.pt", ".torchscript"),
    "skops": (".skops",),
}


@dataclass(frozen=True)
class Exported:
    """A written export.

    Attributes:
        number: The trial number.
        format: ``onnx``, ``torchscript`` or ``skops``.
        source: The trainer's file it was copied from.
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


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for fmt, endings in FORMATS.items():
        if any(name.endswith(e) for e in endings):
            return fmt
    return None


def available_formats(run: Run, number: int) -> dict[str, Path]:
    """The formats trial ``number`` has a file for, each with that file.

    The copy in ``models/`` (the file the final latency was measured on) comes first,
    then the trainer's files in the trial directory, then the stored artifact path.
    """
    candidates: list[Path] = []
    models = run.dir / "models"
    if models.is_dir():
        candidates += sorted(models.glob(f"trial-{number:05d}-*"))
    directory = run.dir / "trials" / f"{number:05d}"  # the engine's trial directory (automl.tune_adapter)
    if directory.is_dir():
        candidates += sorted(p for p in directory.iterdir() if p.is_file())
    row = run.store.trial(run.run_id, number)
    if row and row.get("artifact"):
        candidates.append(Path(row["artifact"]))
    found: dict[str, Path] = {}
    for path in candidates:
        fmt = _format_of(path)
        if fmt and fmt not in found and path.is_file():
            found[fmt] = path
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_trial(run_dir: str | Path, number: int, fmt: str, out: str | Path | None = None) -> Exported:
    """Write front member ``number``'s model in format ``fmt`` to ``out``: a copy of the trial's own
    file in that format, or else a conversion by its trainer from a format the trial has.

    Args:
        run_dir: The run directory.
        number: A trial on the run's Pareto front.
        fmt: ``onnx``, ``torchscript`` or ``skops``.
        out: A file, or a directory (created) to write ``trial-NNNNN.<ext>`` into;
            default ``RUN_DIR/exports/``.

    Raises:
        AutoMLError: For an unknown format, a trial that does not exist or is not on the
            front, or a format this trial's trainer neither wrote nor can convert to (the
            message names the formats available, as written and by conversion).
    """
    if fmt not in FORMATS:
        raise AutoMLError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    run = Run.open(run_dir)
    row = run.store.trial(run.run_id, number)
    if row is None:
        numbers = [t["number"] for t in run.trials()]
        span = f"trials {min(numbers)}..{max(numbers)}" if numbers else "no trials"
        raise AutoMLError(f"{str(run.dir)!r} has no trial {number} (it has {span})")
    front = run.front()
    members = [int(m["number"]) for m in front["members"]]
    if number not in members:
        listed = ", ".join(map(str, members)) or "none"
        raise AutoMLError(
            f"trial {number} ({row['status']}) is not on the Pareto front of {str(run.dir)!r}; "
            f"front members: {listed}"
        )
    formats = available_formats(run, number)
    if fmt in formats:
        source = formats[fmt]
        ext = next(e for e in FORMATS[fmt] if source.name.lower().endswith(e))
        target = _target(run, number, ext, out)
        if target.resolve() != source.resolve():
            shutil.copyfile(source, target)
        return Exported(number, fmt, source, target, target.stat().st_size, _sha256(target))
    return _convert(run, row, formats, fmt, out)


def _target(run: Run, number: int, ext: str, out: str | Path | None) -> Path:
    target = Path(out) if out is not None else run.dir / "exports"
    if out is None or target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        return target / f"trial-{number:05d}{ext}"
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def run_plan(run: Run) -> Any:
    """The run's plan, built again from the spec it ran with the installed plugins."""
    return _trainer_of(run)[0]


def _trainer_of(run: Run) -> tuple[Any, Any]:
    """The run's plan (from the spec it ran) and its trainer record."""
    from automl.plan import build_plan
    from automl.plugins import get_plugin_manager
    from automl.spec import parse_spec

    info = run.info()
    meta = run.dir / "run.json"
    source = json.loads(meta.read_text()).get("spec") if meta.is_file() else None
    plan = build_plan(parse_spec(info["spec_text"], source), get_plugin_manager())
    return plan, plan.trainer


def trial_trainer(run: Run, row: dict[str, Any], plan: Any = None, data: Any = None) -> Any:
    """The run's trainer for one trial, as the engine built it, but not fitted: to load or convert its files.

    Args:
        run: The run.
        row: The trial's store row (its number and config).
        plan: The run's plan (from the spec it ran); default: built again.
        data: The run's data, loaded and split again; default: loaded from ``plan``.
    """
    from automl.interfaces import TrialContext

    if plan is None:
        plan, _ = _trainer_of(run)
    if data is None:
        data = plan.load_data()
    number = int(row["number"])
    context = TrialContext(plan.spec.task or "classification", plan.spec.seed + number, data,
                           run.dir / "trials" / f"{number:05d}")
    return plan.trainer.factory(plan.trainer_config(row["config"] or {}), plan.spec.trainer.params, context)


def convertible_formats(run: Run, number: int) -> dict[str, str]:
    """Formats trial ``number`` has no file for but its trainer can convert to: ``{format: from format}``."""
    formats = available_formats(run, number)
    try:
        _, trainer = _trainer_of(run)
    except AutoMLError:  # a spec that no longer builds (a plugin removed since): nothing to convert with
        return {}
    out: dict[str, str] = {}
    for target, sources in getattr(trainer.factory, "conversions", {}).items():
        if target in FORMATS and target not in formats:
            have = [f for f in sources if f in formats]
            if have:
                out[target] = have[0]
    return out


def _convert(run: Run, row: dict[str, Any], formats: dict[str, Path], fmt: str, out: str | Path | None) -> Exported:
    from automl.errors import TrialError

    number = int(row["number"])
    written = ", ".join(sorted(formats)) or "none (its trainer wrote no model file in a known format)"
    try:
        plan, trainer_spec = _trainer_of(run)
    except AutoMLError as exc:
        raise AutoMLError(f"trial {number} has no {fmt} export; formats available for this trial: {written} "
                          f"(none can be converted: the run's spec no longer builds: {exc})") from exc
    conversions = getattr(trainer_spec.factory, "conversions", {})
    sources = [f for f in conversions.get(fmt, ()) if f in formats]
    if not sources:
        convertible = convertible_formats(run, number)
        listed = ", ".join([*sorted(formats), *(f"{f} (converted from {src})" for f, src in sorted(convertible.items()))])
        raise AutoMLError(f"trial {number} has no {fmt} export; formats available for this trial: {listed or written} "
                          f"(the {trainer_spec.name!r} trainer cannot convert {', '.join(sorted(formats)) or 'nothing'} "
                          f"to {fmt})")
    source_fmt = sources[0]
    source = formats[source_fmt]
    trainer = trial_trainer(run, row, plan)
    with tempfile.TemporaryDirectory(prefix="automl-export-") as tmp:
        try:
            made = Path(trainer.convert(source, fmt, Path(tmp)))
        except (NotImplementedError, ValueError, TrialError) as exc:
            raise AutoMLError(f"trial {number}: the {trainer_spec.name!r} trainer cannot convert {source.name} "
                              f"({source_fmt}) to {fmt}: {exc}") from exc
        if _format_of(made) != fmt or not made.is_file():
            raise AutoMLError(f"trial {number}: the {trainer_spec.name!r} trainer's convert() returned {str(made)!r}, "
                              f"not a {fmt} file")
        ext = next(e for e in FORMATS[fmt] if made.name.lower().endswith(e))
        target = _target(run, number, ext, out)
        shutil.copyfile(made, target)
    return Exported(number, fmt, source, target, target.stat().st_size, _sha256(target), converted_from=source_fmt)
