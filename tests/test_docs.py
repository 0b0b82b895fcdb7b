"""docs/ stays true to the code: every spec field is documented, every command is in the README."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from automl import spec as spec_module
from automl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def all_fields(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen or set()
    names: set[str] = set()
    for cls in [model] if model not in seen else []:
        seen.add(cls)
        for name, field in cls.model_fields.items():
            names.add(name)
            for sub in re.findall(r"automl\.spec\.(\w+)", repr(field.annotation)):
                candidate = getattr(spec_module, sub, None)
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    names |= all_fields(candidate, seen)
    return names


def test_every_spec_field_is_documented() -> None:
    text = (ROOT / "docs" / "spec.md").read_text()
    fields = all_fields(spec_module.Spec) | all_fields(spec_module.FloatParam) | all_fields(spec_module.ChoiceParam)
    missing = sorted(f for f in fields if f"`{f}`" not in text)
    assert not missing, f"fields missing from docs/spec.md: {missing}"


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in main.commands if f"automl {name}" not in readme]
    assert not missing, f"commands missing from README.md: {missing}"
