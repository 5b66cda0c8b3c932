"""A full disk, on a real small filesystem: a DiskFullError that says so, and the database as it was.

SQLite runs in a child process inside a mount namespace of its own (``unshare --mount``, with
``--map-root-user`` when not root) on a tmpfs of a few hundred KiB, so nothing is mounted where the test
runs. PostgreSQL's server must see the filesystem, so a tmpfs is mounted for a tablespace (as root: CI
runs as root) and unmounted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from orm_kit.db import open_database
from orm_kit.errors import DiskFullError
from orm_kit.transactions import transaction

from conftest import raw_connect

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import json, sys
import orm_kit
from orm_kit import Team, transaction
from orm_kit.errors import DiskFullError

folder, mode = sys.argv[1], sys.argv[2]
url = f"sqlite:///{folder}/platform.db"
out = {}
if mode == "cli":
    from click.testing import CliRunner
    from orm_kit.cli import main
    CliRunner().invoke(main, ["--database", url, "migrate"])
    import os
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    open(f"{folder}/filler", "wb").write(b"x" * (free - int(sys.argv[3])))  # leave too little for the seed sets
    result = CliRunner().invoke(main, ["--database", url, "seed"])
    out.update(code=result.exit_code, output=result.output)
    os.remove(f"{folder}/filler")  # room again, to look at what the database holds
    db = orm_kit.connect(url, replicas=[])
else:
    db = orm_kit.connect(url, replicas=[])
    orm_kit.migrate_up(db)
    Team.create(name="before")
    try:
        with transaction(db):
            Team.create(name="in-the-transaction")
            for n in range(200_000):
                if mode == "savepoint":
                    with transaction(db):  # a savepoint: SQLite's rollback takes it with the transaction
                        Team.create(name=f"team-{n}", display_name="x" * 200)
                else:
                    Team.create(name=f"team-{n}", display_name="x" * 200)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.update(error=type(exc).__name__, message=str(exc), disk_full=isinstance(exc, DiskFullError),
                   context=repr(exc.__context__))
out["teams"] = sorted(t.name for t in Team.select())
out["integrity"] = db.execute_sql("PRAGMA integrity_check").fetchone()[0]
print(json.dumps(out))
'''


def run_on_a_small_disk(tmp_path: Path, mode: str, *args: str, size: str = "640k") -> dict[str, object]:
    """Run CHILD with a ``size`` tmpfs at a private mount point; its JSON report."""
    if shutil.which("unshare") is None:
        pytest.fail("the disk-full tests need unshare (util-linux) to mount a small filesystem privately")
    mount = tmp_path / "small"
    mount.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    unshare = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    command = [*unshare, "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && exec "$@"', "sh",
               str(mount), sys.executable, str(script), str(mount), mode, *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("mode", ["statements", "savepoint"])
def test_sqlite_a_full_disk_is_reported_as_one_and_the_transaction_leaves_nothing(tmp_path: Path, mode: str) -> None:
    report = run_on_a_small_disk(tmp_path, mode)
    # It used to be "cannot rollback - no transaction is active", with the real reason only in __context__.
    assert report["error"] == "DiskFullError" and report["disk_full"], report
    assert "the disk holding the SQLite file" in str(report["message"]) and "is full" in str(report["message"])
    assert "nothing it wrote was kept" in str(report["message"])
    assert report["teams"] == ["before"]  # the transaction's rows are gone, the earlier one stayed
    assert report["integrity"] == "ok"


@pytest.mark.parametrize(("room", "expected"), [
    (64 * 1024, "Error: the disk holding the SQLite file"),  # opens, then the load runs out of room
    (4 * 1024, "Error: cannot open database sqlite:///"),     # not even room for the WAL index (-shm)
], ids=["while-loading", "at-open"])
def test_sqlite_a_seed_on_a_full_disk_is_one_line_saying_so_and_loads_nothing(tmp_path: Path, room: int,
                                                                             expected: str) -> None:
    report = run_on_a_small_disk(tmp_path, "cli", str(room), size="1m")
    assert report["code"] == 1, report
    lines = str(report["output"]).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected) and "is full" in lines[0], lines
    assert report["teams"] == []
    assert report["integrity"] == "ok"


@pytest.fixture
def small_tablespace(postgres_url: str) -> Iterator[str]:
    """A 3 MiB tmpfs mounted for a tablespace of the test server (root only; removed afterwards)."""
    if os.geteuid() != 0:
        pytest.fail("the PostgreSQL disk-full test mounts a tmpfs for a tablespace, which needs root (CI is root)")
    name = f"small_{uuid.uuid4().hex[:8]}"
    mount = Path(tempfile.mkdtemp(prefix="orm-kit-small-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        with raw_connect(postgres_url, autocommit=True) as admin:
            data = Path(str(admin.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
            owner = data.stat()
            os.chown(mount, owner.st_uid, owner.st_gid)
            admin.execute(f"CREATE TABLESPACE {name} LOCATION '{mount}'")
        try:
            yield name
        finally:
            with raw_connect(postgres_url, autocommit=True) as admin:
                admin.execute("DROP TABLE IF EXISTS filler")
                admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


def fill(db: peewee.Database) -> None:
    """Rows into the small tablespace, in one transaction, until something gives."""
    with transaction(db):
        for _ in range(10_000):  # random text does not compress: each row takes its room
            db.execute_sql("INSERT INTO filler (payload) SELECT string_agg(md5(random()::text), '') "
                           "FROM generate_series(1, 64)")


@pytest.mark.postgres
def test_postgres_a_full_disk_is_a_disk_full_error_and_the_transaction_leaves_nothing(
        postgres_url: str, small_tablespace: str) -> None:
    db = open_database(postgres_url)
    try:
        db.execute_sql(f"CREATE TABLE filler (id serial PRIMARY KEY, payload text) TABLESPACE {small_tablespace}")
        db.execute_sql("INSERT INTO filler (payload) VALUES ('before')")
        with pytest.raises(DiskFullError) as caught:
            fill(db)
        assert "the disk holding the PostgreSQL database" in str(caught.value)
        assert "No space left on device" in str(caught.value) or "could not extend" in str(caught.value)
        assert isinstance(caught.value, peewee.OperationalError)
        assert db.execute_sql("SELECT payload FROM filler").fetchall() == [("before",)]
    finally:
        db.close()
