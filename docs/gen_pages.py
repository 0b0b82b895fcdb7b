"""Pages generated when the site is built (mkdocs-gen-files runs this file).

* ``reference/spec-schema.md``: every field of the spec, from the JSON Schema the code
  produces (``automl schema``), so the reference cannot drift from the validator.
* ``benchmarks/leaderboard.md``: the current leaderboard from the results store named by
  ``AUTOML_LEADERBOARD_STORE`` (the nightly workflow sets it), else the repository's default
  store when it exists, else a page saying how to produce one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if prop.get("type") == "object":
        extra = prop.get("additionalProperties")
        return f"mapping to {_type(extra)}" if isinstance(extra, dict) and extra else "mapping"
    if "enum" in prop:
        return " or ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    return str(prop.get("type", "any"))


def _bounds(prop: dict[str, Any]) -> str:
    marks = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    return ", ".join(f"{op} {prop[k]}" for k, op in marks.items() if k in prop)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(model: dict[str, Any]) -> list[str]:
    required = set(model.get("required", []))
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, prop in model.get("properties", {}).items():
        if name in required:
            default = "required"
        else:
            default = f"`{json.dumps(prop['default'])}`" if "default" in prop else "-"
        bounds = _bounds(prop)
        kind = _type(prop) + (f" ({bounds})" if bounds else "")
        lines.append(f"| `{name}` | {_cell(kind)} | {_cell(default)} | {_cell(prop.get('description', ''))} |")
    return lines


def spec_reference() -> str:
    from automl.spec import spec_json_schema

    schema = spec_json_schema()
    lines = ["# Spec schema reference", "",
             "Generated from the JSON Schema of the spec (`automl schema`) when this site was built: every field the "
             "validator accepts, its type, default and meaning. [The spec file](../spec.md) explains them with "
             "examples.", "", "## Top level", "", *_table(schema), ""]
    for name, model in sorted(schema.get("$defs", {}).items()):
        lines += [f"## {name}", ""]
        if model.get("description"):
            lines += [_cell(model["description"]), ""]
        lines += [*_table(model), ""]
    return "\n".join(lines)


def _store_url() -> str | None:
    url = os.environ.get("AUTOML_LEADERBOARD_STORE")
    if url:
        return None if url.lower() == "none" else url
    default = ROOT / "benchmarks" / "results" / "hpo.db"
    return f"sqlite:///{default}" if default.is_file() else None


def leaderboard_page() -> str:
    head = ["# Leaderboard", "",
            "The searcher leaderboard over the benchmark results store, written when this site was built "
            "(`automl leaderboard STORE --out DIR` writes the same table with its plots as a static page). "
            "[Benchmarks](../benchmarks.md) explains the suites and the figures.", ""]
    url = _store_url()
    if url is None:
        return "\n".join(head + ["No results store was given to this build: run `automl bench nightly`, then build "
                                 "the site with `AUTOML_LEADERBOARD_STORE=<store URL> mkdocs build`."])
    from automl_bench.leaderboard.board import build_groups
    from automl_bench.leaderboard.render import render_markdown
    from automl_bench.leaderboard.store import open_results

    rows, environments = open_results(url)
    groups, notes = build_groups(rows)
    body = render_markdown(groups, notes, environments[-1] if environments else None)
    # The generated Markdown starts with its own title; this page has one already.
    body = body.split("\n", 2)[2] if body.startswith("# ") else body
    return "\n".join(head) + body


with mkdocs_gen_files.open("reference/spec-schema.md", "w") as fh:
    fh.write(spec_reference())
with mkdocs_gen_files.open("benchmarks/leaderboard.md", "w") as fh:
    fh.write(leaderboard_page())
