"""The README is a map: short, and every link in it and in docs/ leads to a file that exists
(a section moved or renamed breaks a test, not a reader's click)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_a_map_of_at_most_200_lines() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for heading in ("## Quick start", "## Layout", "## Glossary", "## Reference"):
        assert heading in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_anchors(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md":
            slugs = {re.sub(r"[^\w\- ]", "", h.strip("# ").lower()).replace(" ", "-")
                     for h in dest.read_text().splitlines() if h.startswith("#")}
            if anchor not in slugs:
                broken.append(target)
    assert broken == []


def test_every_reference_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in PAGES[1:] if f"docs/{p.name}" not in readme] == []


def test_the_reflection_corpus_figures_in_the_docs_are_the_corpus() -> None:
    import json

    corpus = ROOT / "tests" / "memory" / "data" / "reflection_answers.jsonl"
    rows = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    learnings = sum(len(r["expected"]) for r in rows)
    near = sum(r["near_misses"] for r in rows)  # a count per answer
    text = " ".join((ROOT / "docs" / "memory-library.md").read_text().split())
    assert (f"holds {len(rows)} model answers in these styles ({learnings:,} learnings, "
            f"{near:,} look-alikes)") in text
