"""typed_misuse.py fails ``mypy --strict`` with exactly the errors its ``# E:`` comments name, and no others.

mypy runs as CI runs it on the passing files (the project's ``setup.cfg``: ``strict``, orm-kit's plugin,
the example app on the path), in a fresh cache, so a stale cache cannot hide a change. A missing error
means a mistake that mypy no longer catches; an unexpected one means good code flagged, or a message
changed (then update the comment: it is what users read).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tokenize
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MISUSE = Path("tests") / "typed_misuse.py"
_ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: (?P<message>.*)$")


def expected_errors(source: str, path: Path) -> Counter[tuple[str, int, str]]:
    """``(path, line, message)`` for every ``# E: message`` comment (several may follow each other on a line)."""
    found: Counter[tuple[str, int, str]] = Counter()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.string.startswith("# E: "):
            for message in token.string.removeprefix("# E: ").split("  # E: "):
                found[(path.as_posix(), token.start[0], message.strip())] += 1
    return found


def reported_errors(output: str) -> Counter[tuple[str, int, str]]:
    """``(path, line, message)`` for every error line of mypy's output (notes are advice, not errors)."""
    found: Counter[tuple[str, int, str]] = Counter()
    for line in output.splitlines():
        match = _ERROR.match(line)
        if match:
            found[(Path(match["path"]).as_posix(), int(match["line"]), match["message"].strip())] += 1
    return found


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(*paths: Path | str, cache: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` with the project's configuration, from the repository's root, as CI runs it."""
    command = [sys.executable, "-m", "mypy", "--strict", "--config-file", "setup.cfg", "--cache-dir", str(cache),
               "--no-error-summary", "--no-color-output", *map(str, paths)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_typed_misuse_fails_mypy_with_exactly_the_expected_errors(mypy_cache: Path) -> None:
    expected = expected_errors((ROOT / MISUSE).read_text(), MISUSE)
    assert len(expected) >= 30, "typed_misuse.py lost its # E: comments"
    result = run_mypy(MISUSE, cache=mypy_cache)
    reported = reported_errors(result.stdout)
    missing = sorted((expected - reported).elements())
    unexpected = sorted((reported - expected).elements())
    assert not missing and not unexpected, (
        "mypy's errors differ from the # E: comments\n"
        + "".join(f"  not reported: {p}:{line}: {m}\n" for p, line, m in missing)
        + "".join(f"  not expected: {p}:{line}: {m}\n" for p, line, m in unexpected)
        + (result.stderr or ""))
    assert result.returncode == 1


def test_the_comments_are_read_as_mypy_writes_its_errors() -> None:
    # The check above passes vacuously if either side reads nothing: both sides, on the same two errors.
    source = 'x: int = "a"  # E: first  [assignment]  # E: second  [misc]\n"""# E: not a comment"""\n'
    assert expected_errors(source, Path("t.py")) == Counter(
        {("t.py", 1, "first  [assignment]"): 1, ("t.py", 1, "second  [misc]"): 1})
    output = "t.py:1: error: first  [assignment]\nt.py:1: note: advice\nt.py:1: error: second  [misc]\n"
    assert reported_errors(output) == expected_errors(source, Path("t.py"))
