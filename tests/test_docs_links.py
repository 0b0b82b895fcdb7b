"""The docs point only at files inside the repository: a reader of a checkout (or of the built site) can follow
every reference."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
# Markdown links, and code spans that start like a path leaving the directory: ``../x/y.md``, ``/work/x``.
LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")
SPAN = re.compile(r"`((?:\.\./|/)[^`\s]+)`")


def _outside(doc: Path, target: str) -> bool:
    if re.match(r"^[a-z][a-z0-9+.-]*://", target) or target.startswith("mailto:"):
        return False  # a web address, not a file
    if target.startswith("/"):
        return True  # an absolute path is a file of the machine the doc was written on
    resolved = (doc.parent / target).resolve()
    if ROOT not in resolved.parents:
        return True
    # A path that climbs out of the docs must reach an existing file of the checkout; one below the
    # doc's directory may be a page the site generates (docs/gen_pages.py).
    return target.startswith("../") and not resolved.exists()


def test_no_doc_points_outside_the_repository() -> None:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for target in [*LINK.findall(text), *SPAN.findall(text)]:
            if _outside(doc, target):
                found.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not found, f"references to files outside the repository: {found}"


def test_the_check_sees_a_reference_outside() -> None:
    assert _outside(ROOT / "docs" / "architecture.md", "../shared/design/architecture.md")
    assert _outside(ROOT / "docs" / "x.md", "/work/notes/x.md")
    assert not _outside(ROOT / "docs" / "x.md", "../automl/engine.py")
    assert not _outside(ROOT / "docs" / "x.md", "https://example.org/a/b.md")
