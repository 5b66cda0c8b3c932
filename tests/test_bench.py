"""The bench's reduced pass, so it cannot rot: every workload runs on both databases and every answer agrees.

No timing is asserted here (the machine is shared and noisy); ``bench/run.py`` prints the numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import reset_postgres

ROOT = Path(__file__).resolve().parent.parent


def test_the_quick_bench_runs_on_sqlite_and_postgres_and_every_answer_agrees(postgres_url: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--postgres", postgres_url],
                            capture_output=True, text=True, timeout=900, cwd=ROOT, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("| get by primary key |") == 2  # a table per database
    assert "all answers agree" in output
    assert "ANSWERS DIFFER" not in output


def test_the_quick_migration_stall_bench_runs_every_scenario_but_the_long_readers(postgres_url: str) -> None:
    # It rebuilds the public schema of the database it is given: the test database, reset before each test.
    script = ROOT / "bench" / "bench_migration_stall.py"
    try:
        result = subprocess.run([sys.executable, str(script), "--quick", "--postgres", postgres_url],
                                capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    finally:
        reset_postgres(postgres_url)  # leave the next test the empty database it expects
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for row in ("| (a) make: NOT NULL column with a default + index | safe |",
                "| (b) a foreign key and a CHECK | plain |", "| (d) the shipped 0002 + 0003, again | safe |"):
        assert row in output, output[-4000:]
    assert "applied 0002_deployment_duration, 0003_deployment_history_indexes" in output
