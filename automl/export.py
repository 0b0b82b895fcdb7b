"""``automl export``: a front member's model, in a format its trainer wrote.

Trainers write their exports into the trial's directory (``RUN_DIR/trials/NNNNN/``) and the
engine copies the measured one into ``RUN_DIR/models/``. Which formats a trial has is what
its trainer left there: the torch trainer writes ONNX and TorchScript side by side, the
scikit-learn trainer skops or ONNX (``params.export``), the ``function`` trainer no model
at all. Exporting copies that file; nothing is loaded, unpickled or converted, so the copy
is byte for byte what was validated and measured.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from automl.errors import AutoMLError
from automl.run import Run

__all__ = ["FORMATS", "Exported", "available_formats", "export_trial"]

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
    """

    number: int
    format: str
    source: Path
    path: Path
    size_bytes: int
    sha256: str


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
    """Copy front member ``number``'s model in format ``fmt`` to ``out``.

    Args:
        run_dir: The run directory.
        number: A trial on the run's Pareto front.
        fmt: ``onnx``, ``torchscript`` or ``skops``.
        out: A file, or a directory (created) to write ``trial-NNNNN.<ext>`` into;
            default ``RUN_DIR/exports/``.

    Raises:
        AutoMLError: For an unknown format, a trial that does not exist or is not on the
            front, or a format this trial's trainer did not write (the message names the
            formats it has).
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
    if fmt not in formats:
        have = ", ".join(sorted(formats)) or "none (its trainer wrote no model file in a known format)"
        raise AutoMLError(f"trial {number} has no {fmt} export; formats available for this trial: {have}")
    source = formats[fmt]
    ext = next(e for e in FORMATS[fmt] if source.name.lower().endswith(e))
    target = Path(out) if out is not None else run.dir / "exports"
    if out is None or target.is_dir() or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        target = target / f"trial-{number:05d}{ext}"
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    if target.resolve() != source.resolve():
        shutil.copyfile(source, target)
    return Exported(number, fmt, source, target, target.stat().st_size, _sha256(target))
