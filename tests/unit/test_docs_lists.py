"""The docs site's lists render as lists: MkDocs' Markdown (Python-Markdown) starts a list only after a
blank line, where GitHub does not need one; a list glued to its paragraph rendered as "...: - (a) ... - (b)"
run-on text on the site's gate page."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
ITEM = re.compile(r"^([-*+]|\d+\.)\s")


def glued_lists(text: str) -> list[int]:
    """Line numbers of list items that follow a paragraph line with no blank line between (outside code)."""
    found, fence, previous = [], False, ""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip().startswith("```"):
            fence = not fence
        elif not fence and ITEM.match(line) and previous.strip() and not ITEM.match(previous):
            if not previous.startswith((" ", "|", "#", ">", "<")):
                found.append(number)
        previous = line
    return found


def test_the_rule_finds_a_list_glued_to_its_paragraph():
    assert glued_lists("Intro:\n- a\n- b\n") == [2]
    assert glued_lists("Intro:\n\n- a\n- b\n```\ntext\n- not a list\n```\n") == []


def test_no_page_glues_a_list_to_its_paragraph():
    glued = {
        str(page.relative_to(DOCS)): lines
        for page in sorted(DOCS.rglob("*.md"))
        if (lines := glued_lists(page.read_text()))
    }
    assert not glued, f"a blank line is needed before these list items (page: line numbers): {glued}"
