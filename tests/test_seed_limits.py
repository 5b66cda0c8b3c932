"""Seed files are data from outside: bounded in size and expansion, quoted briefly, and loaded in linear time."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import peewee
import pytest

from orm_kit.errors import SeedError, SeedProblemsError
from orm_kit.models import Team
from orm_kit.platform import SEED_REGISTRY as REGISTRY
from orm_kit.seeding import load
from orm_kit.seeding.files import MAX_DEPTH, read_rows
from orm_kit.testing import record_queries


def seed_folder(root: Path, text: str, name: str = "hostile") -> Path:
    folder = root / "seeds"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    return folder


def billion_laughs() -> str:
    """620 bytes: nine anchors, each a list of nine of the one before, on rows of a table loaded after team; a team
    row's value is the last one (9^9 = 387,420,489 strings), so validating the team quotes the whole of it."""
    lines = ["deployment:"]
    previous = None
    for name in "abcdefghi":
        items = ",".join(['"lol"'] * 9 if previous is None else [f"*{previous}"] * 9)
        lines.append(f"  - {{key: {name}, triggered_by: &{name} [{items}]}}")
        previous = name
    return "\n".join([*lines, "team:", "  - {name: bomb, display_name: *i}"]) + "\n"


def test_a_billion_laughs_file_is_refused_at_once_and_loads_nothing(migrated: peewee.Database, tmp_path: Path) -> None:
    folder = seed_folder(tmp_path, billion_laughs())
    started = time.monotonic()
    with pytest.raises(SeedError) as caught:
        load(migrated, REGISTRY, folder)
    assert time.monotonic() - started < 5  # it used to run for minutes and exhaust memory
    message = str(caught.value)
    assert "hostile.yaml, line " in message and "billion laughs" in message and "through YAML aliases" in message
    assert len(message) < 400
    assert Team.select().count() == 0


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    folder = seed_folder(tmp_path, "team:\n  - name: x\n    display_name: &loop [a, *loop]\n")
    with pytest.raises(SeedError, match=r"hostile.yaml, line 3: refers to itself through a YAML alias"):
        read_rows(folder / "hostile.yaml")


def test_anchors_used_as_intended_still_load(migrated: peewee.Database, tmp_path: Path) -> None:
    text = "team:\n  - {name: a, email: &mail ops@example.com}\n" + "".join(
        f"  - {{name: t{n}, email: *mail}}\n" for n in range(50))
    assert load(migrated, REGISTRY, seed_folder(tmp_path, text)).inserted == 51


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_past_the_bound_is_a_seed_error_not_a_recursion_error(tmp_path: Path, style: str) -> None:
    depth = MAX_DEPTH + 10
    if style == "flow":
        value = "[" * depth + "]" * depth
        text = f"team:\n  - name: {value}\n"
    else:
        text = "team:\n  - name:\n" + "".join("  " * (level + 3) + "-\n" for level in range(depth))
    with pytest.raises(SeedError, match=f"nests deeper than {MAX_DEPTH} levels"):
        read_rows(seed_folder(tmp_path, text) / "hostile.yaml")


def test_a_file_past_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = seed_folder(tmp_path, "team:\n" + "  - name: a\n" * 200) / "hostile.yaml"
    with pytest.raises(SeedError, match=r"hostile.yaml: is larger than 1,000 bytes, the most a seed file may hold"):
        read_rows(path, max_bytes=1000)
    assert len(read_rows(path, max_bytes=10_000)) == 200


def test_a_seed_file_that_never_ends_is_read_only_up_to_the_bound(tmp_path: Path) -> None:
    fifo = tmp_path / "endless.yaml"
    os.mkfifo(fifo)
    stop = threading.Event()

    def write_for_ever() -> None:
        with open(fifo, "wb") as out:
            try:
                while not stop.is_set():
                    out.write(b"# padding\n" * 1000)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=write_for_ever, daemon=True)
    writer.start()
    try:
        with pytest.raises(SeedError, match="is larger than 100,000 bytes"):
            read_rows(fifo, max_bytes=100_000)
    finally:
        stop.set()
        writer.join(timeout=5)


def test_errors_quote_huge_values_briefly(migrated: peewee.Database, tmp_path: Path) -> None:
    huge_name = "x" * 2_000_000
    huge_number = "9" * 5000  # past Python's 4,300-digit limit for turning numbers into text
    for text in (f"team:\n  - name: {huge_name}\n", f"team:\n  - name: team\n    parent: {huge_number}\n",
                 f"{huge_name}: []\n", f"team:\n  - [{huge_name}]\n"):
        with pytest.raises(SeedError) as caught:
            load(migrated, REGISTRY, seed_folder(tmp_path, text))
        assert len(str(caught.value)) < 600, str(caught.value)[:300]
    assert Team.select().count() == 0


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "latin1.yaml").write_bytes("team:\n  - name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SeedError, match=r"latin1.yaml, line 2: is not UTF-8 text"):
        read_rows(folder / "latin1.yaml")


def _bookkeeping_statements(db: peewee.Database, root: Path, teams: int) -> int:
    folder = root / f"seeds-{teams}"
    folder.mkdir()
    (folder / "teams.yaml").write_text("team:\n" + "".join(f"  - name: team-{teams}-{n}\n" for n in range(teams)))
    with record_queries(db) as log:
        assert load(db, REGISTRY, folder).inserted == teams
    return sum("orm_kit_seed_row" in statement.sql for statement in log.statements)


def test_bookkeeping_takes_the_same_statements_for_ten_rows_and_for_three_hundred(
        migrated: peewee.Database, tmp_path: Path) -> None:
    # A statement per row, each scanning the bookkeeping for the row's natural key, made loading quadratic
    # (24,000 rows: over a minute). bench/bench_seed_load.py measures the time.
    small = _bookkeeping_statements(migrated, tmp_path, 10)
    large = _bookkeeping_statements(migrated, tmp_path, 300)
    assert large == small
    assert small <= 8


def test_a_table_or_field_name_of_100000_characters_is_quoted_briefly(migrated: peewee.Database,
                                                                      tmp_path: Path) -> None:
    """An unknown table's name was quoted whole: a 100 kB message for a 100 kB key."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "long.yaml").write_text(
        "team:\n  - name: a\n    " + "f" * 1000 + ": 1\n? " + "t" * 100_000 + "\n:\n  - name: b\n")
    with pytest.raises(SeedProblemsError) as caught:
        load(migrated, REGISTRY, tmp_path / "seeds")
    assert len(caught.value.problems) == 2 and len(str(caught.value)) < 1000
    assert "unknown table 'tttttttt" in str(caught.value)
