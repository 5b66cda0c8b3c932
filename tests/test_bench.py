"""The bench's reduced pass, so it cannot rot: every workload runs on both databases and every answer agrees.

No timing is asserted here (the machine is shared and noisy); ``bench/run.py`` prints the numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_quick_bench_runs_on_sqlite_and_postgres_and_every_answer_agrees(postgres_url: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--postgres", postgres_url],
                            capture_output=True, text=True, timeout=900, cwd=ROOT, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert output.count("| get by primary key |") == 2  # a table per database
    assert "all answers agree" in output
    assert "ANSWERS DIFFER" not in output
