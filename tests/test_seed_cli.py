"""`orm-kit seed ...`: thin commands, one-line errors, exit codes that can gate a deploy."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TextIO

import pytest
from click.testing import CliRunner

from orm_kit.cli import _progress, main
from orm_kit.platform import seed_dir


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="orm-kit")
    return result.exit_code, result.stdout, result.stderr


def test_seed_loads_once_then_reports_nothing_to_do(db_url: str) -> None:
    assert run("--database", db_url, "migrate")[0] == 0
    code, out, err = run("--database", db_url, "seed")
    assert (code, err) == (0, "")
    assert out == "seeded demo, reference: 232 inserted, 0 updated, 0 unchanged\n"
    code, out, _ = run("--database", db_url, "seed", "load")
    assert (code, out) == (0, "seeded demo, reference: 0 inserted, 0 updated, 232 unchanged\n")
    code, out, _ = run("--database", db_url, "seed", "status")
    assert code == 0
    assert [line.split()[:3] for line in out.splitlines()] == [["demo", "loaded", "215"], ["reference", "loaded", "17"],
                                                               ["seed", "folders:", str(seed_dir())]]


def test_dry_run_lists_rows_and_status_gates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    code, out, _ = run("--database", url, "seed", "--set", "reference", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "would insert team 'engineering'" and len(lines) == 18
    assert lines[-1] == "dry run, nothing written: reference would insert 17 and update 0 row(s); 0 unchanged"
    code, out, _ = run("--database", url, "seed", "status")
    assert code == 1 and "reference            not loaded" in out


def test_status_gates_on_the_sets_a_deploy_loads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    assert run("--database", url, "seed", "--set", "reference")[0] == 0
    assert run("--database", url, "seed", "status")[0] == 1  # demo is not loaded
    code, out, _ = run("--database", url, "seed", "status", "--set", "reference")
    assert code == 0 and [line.split()[:2] for line in out.splitlines()] == [["reference", "loaded"],
                                                                             ["seed", "folders:"]]
    code, out, err = run("--database", url, "seed", "status", "--set", "nope")
    assert (code, out) == (1, "") and "no seed set named 'nope'" in err


BAD = [
    ("team:\n  - name: ok\n  - name: Not A Slug\n",
     "team field 'name': must be a lowercase slug of letters, digits and '-', starting with a letter and not "
     "ending with '-' (got 'Not A Slug')"),
    # PyYAML builds this date itself and fails with a bare ValueError: still one line, no traceback
    ("team:\n  - name: ok\n    created_at: 2026-13-45\n",
     "team field 'created_at': '2026-13-45' is not a valid value: month must be in 1..12 (fix it, or quote it "
     "to give text)"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=["invalid value", "impossible date"])
def test_a_bad_seed_file_is_one_line_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    (tmp_path / "seeds").mkdir()
    bad = tmp_path / "seeds" / "teams.yaml"
    bad.write_text(text)
    code, out, err = run("--database", url, "seed", "--seeds", str(tmp_path / "seeds"))
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [f"Error: {bad}, line 3: {message}"]


def test_remove_and_generate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    run("--database", url, "seed")
    code, out, _ = run("--database", url, "seed", "remove", "demo", "--dry-run")
    assert code == 0 and out.startswith("would remove set demo: 6 incident, 114 deployment")
    code, _, err = run("--database", url, "seed", "remove", "reference")
    assert code == 1 and "is referred to by service" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run("--database", url, "seed", "generate", "--deployments", "2000", "--random-seed", "9")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("/2000 deployments") and "2000/2000 deployments" in lines
    assert lines[-1].startswith("generated 2000 deployments, ") and "(random seed 9)" in lines[-1]
    code, out, _ = run("--database", url, "seed", "remove-generated", "9")
    assert code == 0 and out.startswith("removed 2000 deployments, ") and out.endswith("(random seed 9)\n")
    code, _, err = run("--database", url, "seed", "remove-generated", "9")
    assert code == 1 and "no synthetic history for random seed 9" in err
    code, _, err = run("--database", url, "seed", "generate", "--deployments", "-1")
    assert code == 2 and "-1" in err
    code, _, err = run("--database", url, "seed", "--dry-run", "status")
    assert code == 2 and "--dry-run does not apply to `orm-kit seed status`" in err


def test_a_terminal_gets_a_progress_bar_and_a_pipe_plain_lines() -> None:
    def feed(stream: TextIO) -> None:
        with _progress(1000, stream) as report:
            for done in range(250, 1001, 250):
                report(done, 1000)

    pipe = io.StringIO()
    feed(pipe)
    assert pipe.getvalue() == "250/1000 deployments\n500/1000 deployments\n750/1000 deployments\n" \
                              "1000/1000 deployments\n"
    controller, terminal = os.openpty()  # a real terminal, as a user's shell gives one
    try:
        with open(terminal, "w", encoding="utf-8") as tty:
            feed(tty)
        chunks = []
        while True:  # a pty hands its output over in pieces; once the terminal side is closed, Linux says EIO
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        shown = b"".join(chunks).decode()
    finally:
        os.close(controller)
    assert "deployments" in shown and "100%" in shown and "\r" in shown  # redrawn in place, not lines
    assert "1000/1000" not in shown


def test_seeds_folder_works_after_the_subcommand_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "teams.yaml").write_text("team:\n  - name: platform\n")
    code, out, _ = run("--database", url, "seed", "load", "--seeds", str(tmp_path / "seeds"), "--replace-seeds")
    assert (code, out) == (0, "seeded teams: 1 inserted, 0 updated, 0 unchanged\n")
    code, out, _ = run("--database", url, "seed", "status", "--seeds", str(tmp_path / "seeds"), "--replace-seeds")
    assert code == 0 and out.split()[:2] == ["teams", "loaded"]


def test_seeds_dir_adds_to_the_shipped_sets_and_status_says_where_it_looked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "extra.yaml").write_text("team:\n  - name: extra-team\n    parent: platform\n")  # refers to a shipped row
    code, out, err = run("--database", url, "seed", "--seeds", str(mine))
    assert (code, out, err) == (0, "seeded demo, reference, extra: 233 inserted, 0 updated, 0 unchanged\n", "")
    code, out, _ = run("--database", url, "seed", "status", "--seeds", str(mine))
    assert code == 0 and [line.split()[:2] for line in out.splitlines()] == [
        ["demo", "loaded"], ["extra", "loaded"], ["reference", "loaded"], ["seed", "folders:"]]
    assert out.splitlines()[-1] == f"seed folders: {seed_dir()}, {mine.resolve()}"
    # Without --seeds the extra set is recorded but its files are not here: status says where it looked.
    code, out, _ = run("--database", url, "seed", "status")
    assert code == 1 and "extra                files missing      1 rows" in out
    assert f"(recorded in the database, not in {seed_dir()})" in out
    # --replace-seeds: only the folder given; the shipped sets are then the missing ones.
    code, out, _ = run("--database", url, "seed", "status", "--seeds", str(mine), "--replace-seeds")
    assert code == 1 and [line.split()[:3] for line in out.splitlines()[:3]] == [
        ["demo", "files", "missing"], ["extra", "loaded", "1"], ["reference", "files", "missing"]]
    clash = tmp_path / "clash"
    (clash / "demo").mkdir(parents=True)
    (clash / "demo" / "teams.yaml").write_text("team:\n  - name: other\n")
    code, out, err = run("--database", url, "seed", "--seeds", str(clash))
    assert code == 1 and "two seed sets are named 'demo'" in err and "--replace-seeds" in err


def test_a_repeatable_option_on_the_group_and_the_subcommand_adds_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("--database", url, "migrate")
    code, out, _ = run("--database", url, "seed", "--set", "reference", "load", "--set", "demo", "--dry-run")
    assert code == 0 and out.splitlines()[-1].startswith("dry run, nothing written: reference, demo would insert")
