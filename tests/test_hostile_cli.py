"""Hostile arguments to the `orm-kit` command: a one-line error and exit 1 or 2, never a traceback or a page of text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orm_kit.cli import main

HUGE = "9" * 5000  # past Python's 4,300-digit limit for turning text into a number
LONG = "x" * 100_000

CASES = [
    ["migrate", "up", HUGE], ["migrate", "up", "-1"], ["migrate", "up", LONG], ["migrate", "up", "\x00"],
    ["migrate", "up", "platform:"], ["migrate", "up", ":0001"], ["migrate", "up", "²"], ["migrate", "down", HUGE],
    ["migrate", "down", "0" * 5000], ["migrate", "baseline", HUGE], ["migrate", "sql", HUGE],
    ["migrate", "create", "\x00"], ["seed", "--set", "\x00"], ["seed", "--set", LONG], ["seed", "remove", LONG],
    ["seed", "--seeds", "/dev/null"], ["seed", "status", "--set", LONG],
    ["--database", "\x00", "migrate"], ["--database", "sqlite:///\x00", "migrate"],
    ["--database", "sqlite:///" + "a" * 5000 + ".db", "migrate"], ["--database", "postgresql://[::1", "migrate"],
    ["--database", "postgresql://[::1]:70000/x", "migrate"],
    ["--database", "sqlite:///x.db?timeout=" + HUGE, "migrate"],
    ["--database", "postgresql://a:b@127.0.0.1:99999/x", "migrate"],
    ["--database", "postgresql+pool://a:b@127.0.0.1:1/x?max_connections=" + HUGE, "migrate"],
    ["--database", "postgresql://a:b@127.0.0.1:1/x?connect_timeout=" + HUGE, "migrate"],
    ["--database", "postgresql://a:b@127.0.0.1:1/x?sslmode=\x00", "migrate"],
    ["--project", "/dev/null", "migrate"], ["--models", "\x00", "migrate", "status"],
    ["--models", LONG, "migrate", "status"], ["--seed-registry", "os:path", "seed"],
]


def run(tmp_path: Path, arguments: list[str]) -> tuple[int, str]:
    database = ["--database", f"sqlite:///{tmp_path / 'x.db'}"] if arguments[0] != "--database" else []
    result = CliRunner().invoke(main, [*database, *arguments])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)[:300]
    return result.exit_code, result.output


@pytest.mark.parametrize("arguments", CASES, ids=lambda a: " ".join(x[:20] for x in a)[:60])
def test_hostile_arguments_end_in_one_short_line_and_a_failing_exit_code(tmp_path: Path,
                                                                          arguments: list[str]) -> None:
    CliRunner().invoke(main, ["--database", f"sqlite:///{tmp_path / 'x.db'}", "migrate"])
    code, output = run(tmp_path, arguments)
    assert code in (1, 2), output[:300]
    assert "Traceback" not in output and len(output) < 1500, output[:300]
    assert output.rstrip().splitlines()[-1].startswith("Error: "), output[:300]


words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30) | st.sampled_from(
    ["0001", "platform:0002", HUGE, "-1", "nan", "inf", "1e400", "0", "--", "-x"])
commands = st.sampled_from([["migrate", "up"], ["migrate", "down"], ["migrate", "sql"], ["migrate", "baseline"],
                            ["seed", "remove"], ["seed", "--set"], ["migrate", "--lock-timeout"],
                            ["migrate", "--lock-retries"], ["seed", "generate", "--days"],
                            ["seed", "generate", "--deployments"], ["seed", "remove-generated"]])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=commands, word=words)
def test_any_argument_is_a_result_or_a_one_line_error(tmp_path: Path, command: list[str], word: str) -> None:
    code, output = run(tmp_path, [*command, word])
    assert "Traceback" not in output, output[:300]
    if code != 0:  # a result may be long (`migrate sql platform:0002` prints the SQL); an error is not
        # click's usage errors quote the argument as given: the output is bounded by what the user typed.
        assert len(output) < 1500 + 2 * len(word), output[:300]
        assert code in (1, 2) and output.rstrip().splitlines()[-1].startswith("Error: "), output[:300]
