"""A throwaway PostgreSQL server on 127.0.0.1 for tests (orm-kit's own conftest.py and .ci/run use it).

    python -m orm_kit.testing.pgserver start DATADIR   # prints the URL of a fresh test database
    python -m orm_kit.testing.pgserver stop DATADIR

    from orm_kit.testing import pgserver
    url = pgserver.start(Path("/tmp/pg"))              # initdb, pg_ctl start, CREATE DATABASE
    pgserver.stop(Path("/tmp/pg"))

Host connections use scram-sha-256 with a password, as production does, so the tests can prove a
password never leaks. PostgreSQL refuses to run as root: as root, the server runs as the ``postgres``
user. Durability is off (fsync, full-page writes): it is a test server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

USER = "orm_kit"
PASSWORD = "orm-kit-test-secret"
DATABASE = "orm_kit_test"


def find_bin_dir() -> Path:
    """The folder with initdb and pg_ctl (PostgreSQL 15 preferred), or a clear error."""
    env = os.environ.get("ORM_KIT_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates.append("/usr/lib/postgresql/15/bin")
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
                     "(apt-get install postgresql-15) or set ORM_KIT_PG_BIN to their folder")


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def url_for(port: int, database: str = DATABASE, password: str = PASSWORD) -> str:
    """The URL of ``database`` on the test server listening on ``port``."""
    return f"postgresql://{USER}:{password}@127.0.0.1:{port}/{database}"


def start(datadir: Path) -> str:
    """Create a cluster in ``datadir``, start it on a free port and return the test database URL."""
    bin_dir = find_bin_dir()
    datadir = datadir.resolve()
    if datadir.exists():
        stop(datadir)
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True)
    sockets = datadir / "sockets"
    pwfile = datadir / "pwfile"
    pgdata = datadir / "pgdata"
    sockets.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", USER, f"--pwfile={pwfile}",
                         "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    port = _free_port()
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
               "-c synchronous_commit=off -c max_connections=200 -c timezone=UTC")
    subprocess.run(
        _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-o", options, "-l",
                         str(datadir / "server.log"), "-w", "-t", "60", "start"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    (datadir / "port").write_text(str(port))
    subprocess.run(
        [str(bin_dir / "psql"), "-h", str(sockets), "-p", str(port), "-U", USER, "-d", "postgres", "-q",
         "-c", f"CREATE DATABASE {DATABASE}"],
        check=True, stdout=subprocess.DEVNULL,
    )
    return url_for(port)


def stop(datadir: Path) -> None:
    """Stop the server in ``datadir`` if it runs (fast shutdown)."""
    pgdata = datadir.resolve() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    bin_dir = find_bin_dir()
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]),
                   check=False, stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    """``start DATADIR`` (prints the URL) or ``stop DATADIR``; returns the exit code."""
    if len(argv) != 3 or argv[1] not in {"start", "stop"}:
        print("usage: python -m orm_kit.testing.pgserver start|stop DATADIR", file=sys.stderr)
        return 2
    folder = Path(argv[2])
    if argv[1] == "start":
        print(start(folder))
    else:
        stop(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
