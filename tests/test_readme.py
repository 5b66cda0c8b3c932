"""The README's tour runs as written, and every test it names as a guarantee's proof exists."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return [b for b in blocks if "orm_kit.connect(" in b]


def test_readme_has_a_tour() -> None:
    assert tour_blocks(), "README.md lost its runnable tour"


@pytest.mark.parametrize("index", range(len(tour_blocks())))
def test_readme_tour_runs(index: int, tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(tour_blocks()[index], f"README.md tour {index}", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "tour.db").exists()


def prose() -> str:
    """The README without its fenced code blocks (a table or link inside code is not one)."""
    return re.sub(r"```.*?```", "", README.read_text(), flags=re.S)


def test_no_table_is_split_by_a_blank_line() -> None:
    # A blank line ends a Markdown table: rows after it render as a paragraph of pipes.
    lines = prose().splitlines()
    split = [i + 1 for i in range(1, len(lines) - 1)
             if lines[i] == "" and lines[i - 1].startswith("|") and lines[i + 1].startswith("|")]
    assert split == [], f"README.md tables split by a blank line at lines {split} of its prose"


def test_it_stands_alone() -> None:
    # A clone has only the repository: no links out of it, no mention of the folders beside it.
    text = README.read_text()
    assert re.findall(r"\]\((?:https?:|\.\./)[^)]*\)|https?://[^\s`)]+", prose()) == []
    assert "../shared" not in text and "DESIGN.md" not in text and "STYLE.md" not in text


def test_every_test_the_readme_names_exists() -> None:
    """"What orm-kit guarantees" backs each promise with ``tests/file.py::test_name``: a renamed test breaks this."""
    section = README.read_text().split("## What orm-kit guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 30, "the guarantees name the tests that back them"
    root = README.parent
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^def {name}\(", (root / path).read_text(), re.M)]
    assert missing == []
