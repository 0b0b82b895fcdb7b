"""docs/plugins.md stays true to the code: every hook and record field is documented, the
first-party searcher names are listed, and the example searcher passes the conformance kit."""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from pathlib import Path

from automl import hookspecs, interfaces
from automl.interfaces import SearcherSpec
from automl.plugins import KNOWN_PROVIDERS
from automl.testing import SearcherConformance

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def hook_names() -> list[str]:
    marker = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets
    return sorted(name for name, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker))


def test_the_hook_list_is_read_from_hookspecs() -> None:
    # The check below would pass vacuously if the marker attribute changed.
    assert {"automl_register_searchers", "automl_open_store"} <= set(hook_names())


def test_every_hookspec_has_a_section() -> None:
    missing = [name for name in hook_names() if f"### `{name}`" not in DOC]
    assert not missing, f"hooks without a '### `NAME`' section in docs/plugins.md: {missing}"


def test_every_record_field_is_documented() -> None:
    missing = []
    for record in (interfaces.SearcherSpec, interfaces.TrainerSpec, interfaces.DatasetSpec, interfaces.TrialOutcome):
        section = DOC.split(f"**`{record.__name__}`**", 1)
        if len(section) == 1:
            missing.append(record.__name__)
            continue
        paragraph = section[1].split("\n\n", 1)[0]
        missing += [f"{record.__name__}.{f.name}" for f in dataclasses.fields(record) if f"`{f.name}`" not in paragraph]
    assert not missing, f"records or fields missing from docs/plugins.md: {missing}"


def test_every_first_party_searcher_is_listed() -> None:
    names = set(KNOWN_PROVIDERS["searcher"]) | {"random", "grid"}
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"searchers missing from docs/plugins.md: {missing}"


def _example_module() -> types.ModuleType:
    """The first Python block of 'Writing a searcher', executed as a module."""
    section = DOC.split("## Writing a searcher", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/plugins.md lost its example searcher"
    module = types.ModuleType("automl_docs_example")
    exec(compile(code.group(1), "docs/plugins.md", "exec"), module.__dict__)  # our own file, not user input
    sys.modules[module.__name__] = module  # so the kit's pickle round trip finds the class
    return module


_EXAMPLE = _example_module()


class TestDocumentedExampleSearcher(SearcherConformance):
    searcher = "halton"
    options = {"scramble": True}
    improves = False  # space filling: it ignores results

    def spec(self) -> SearcherSpec:
        (record,) = _EXAMPLE.automl_register_searchers()
        return record
