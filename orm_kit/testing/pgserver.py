"""A throwaway PostgreSQL server on 127.0.0.1 for tests: the pytest plugin starts one when no URL is given.

    python -m orm_kit.testing.pgserver start DATADIR   # prints the URL of a fresh test database
    python -m orm_kit.testing.pgserver pair DATADIR    # a primary and a streaming hot standby: two URLs
    python -m orm_kit.testing.pgserver stop DATADIR    # stops what start or pair started there

    from orm_kit.testing import pgserver
    url = pgserver.start(Path("/tmp/pg"))              # initdb, pg_ctl start, CREATE DATABASE
    pgserver.stop(Path("/tmp/pg"))
    primary, standby = pgserver.start_pair(Path("/tmp/pair"))        # about 3 s
    extra = pgserver.start_standby(Path("/tmp/pair/primary"), Path("/tmp/pair/extra"), "extra")
    pgserver.promote(Path("/tmp/pair/extra"))          # the standby becomes a primary of its own
    with pgserver.running() as url:                    # in a temporary folder, stopped and removed after
        ...

It needs the PostgreSQL server binaries (``initdb``, ``pg_ctl``; Debian: ``apt-get install postgresql-15``),
found in ``$ORM_KIT_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin``, else on ``PATH``. Host
connections use scram-sha-256 with a password, as production does, so tests can prove a password never
leaks. PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user (so the data
folder must be one that user can reach, e.g. under /tmp). Durability is off (fsync, full-page writes):
it is a test server. Failures raise :class:`orm_kit.errors.PostgresServerError` with the server's log.
The single server commits
asynchronously (``synchronous_commit=off``, fast); a pair's primary commits synchronously, so its WAL
reaches the standby at once instead of at the WAL writer's next round (200 ms). A standby is made
with ``pg_basebackup -R -X stream`` over its own replication slot and cancels standby queries that
hold up replay after ``max_standby_streaming_delay`` (200 ms here, 30 s by default).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from orm_kit.errors import PostgresServerError

__all__ = ["DATABASE", "PASSWORD", "USER", "find_bin_dir", "promote", "restart", "running", "start", "start_pair",
           "start_standby", "stop", "url_for"]

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
    raise PostgresServerError("PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
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


def _run(cmd: list[str], what: str, log: Path | None = None) -> None:
    """Run one server command; a failure is a PostgresServerError with its output (and the server log)."""
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        if log is not None and log.exists():
            output += "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise PostgresServerError(f"could not {what} (exit code {done.returncode}): {output}")


def _fresh_folder(datadir: Path) -> tuple[Path, Path]:
    """An empty ``datadir`` (the server user's) with its socket folder; returns (datadir, sockets)."""
    datadir = datadir.resolve()
    if datadir.exists():
        stop(datadir)
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True)
    sockets = datadir / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres")
        shutil.chown(sockets, "postgres")
    return datadir, sockets


def _launch(datadir: Path, port: int, settings: dict[str, str]) -> None:
    """Start the server whose data is in ``datadir/pgdata``; the options are kept for :func:`restart`."""
    options = f"-p {port} -k {datadir / 'sockets'} " + " ".join(f"-c {k}={v}" for k, v in settings.items())
    (datadir / "options").write_text(options)
    (datadir / "port").write_text(str(port))
    restart(datadir)


def restart(datadir: Path) -> None:
    """Start again a server of ``datadir`` that was stopped (same port, same settings)."""
    datadir = datadir.resolve()
    bin_dir = find_bin_dir()
    log = datadir / "server.log"
    _run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(datadir / "pgdata"), "-o",
                          (datadir / "options").read_text(), "-l", str(log), "-w", "-t", "60", "start"]),
         f"start PostgreSQL in {datadir}", log)


def _settings(synchronous_commit: str) -> dict[str, str]:
    return {"listen_addresses": "127.0.0.1", "fsync": "off", "full_page_writes": "off",
            "synchronous_commit": synchronous_commit, "max_connections": "200", "timezone": "UTC"}


def start(datadir: Path, *, synchronous_commit: str = "off") -> str:
    """Create a cluster in ``datadir``, start it on a free port and return the test database URL."""
    bin_dir = find_bin_dir()
    datadir, sockets = _fresh_folder(datadir)
    pwfile = datadir / "pwfile"
    pgdata = datadir / "pgdata"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    _run(_as_server_user([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", USER, f"--pwfile={pwfile}",
                          "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"]),
         f"create a PostgreSQL cluster in {pgdata}")
    port = _free_port()
    _launch(datadir, port, _settings(synchronous_commit))
    _run([str(bin_dir / "psql"), "-h", str(sockets), "-p", str(port), "-U", USER, "-d", "postgres", "-q",
          "-c", f"CREATE DATABASE {DATABASE}"],
         f"create the database {DATABASE}", datadir / "server.log")
    return url_for(port)


def start_standby(primary_dir: Path, datadir: Path, slot: str, *, streaming_delay_ms: int = 200) -> str:
    """A streaming hot standby of the primary in ``primary_dir``, over replication slot ``slot``; its URL."""
    bin_dir = find_bin_dir()
    primary_dir = primary_dir.resolve()
    datadir, _ = _fresh_folder(datadir)
    # Over the primary's Unix socket (trust), so primary_conninfo, written by -R, holds no password.
    _run(_as_server_user([str(bin_dir / "pg_basebackup"), "-h", str(primary_dir / "sockets"),
                          "-p", (primary_dir / "port").read_text(), "-U", USER, "-D", str(datadir / "pgdata"),
                          "-R", "-X", "stream", "-S", slot, "-C", "--no-sync", "-c", "fast"]),
         f"copy the primary in {primary_dir} for a standby")
    settings = {**_settings("on"), "hot_standby": "on", "max_standby_streaming_delay": f"{streaming_delay_ms}ms",
                "wal_receiver_status_interval": "1s"}
    port = _free_port()
    _launch(datadir, port, settings)
    return url_for(port)


def start_pair(datadir: Path) -> tuple[str, str]:
    """A primary (``datadir/primary``, synchronous commit) and its hot standby (``datadir/standby``): both URLs."""
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres")
    primary = start(datadir / "primary", synchronous_commit="on")
    return primary, start_standby(datadir / "primary", datadir / "standby", "standby")


def promote(datadir: Path) -> None:
    """Promote the standby in ``datadir``: it leaves recovery and takes writes (waits until it has)."""
    bin_dir = find_bin_dir()
    _run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(datadir.resolve() / "pgdata"), "-w", "promote"]),
         f"promote the standby in {datadir}")


def stop(datadir: Path) -> None:
    """Stop the server in ``datadir`` if it runs (fast shutdown); for a pair's folder, both (standbys first)."""
    datadir = datadir.resolve()
    if not (datadir / "pgdata").exists():
        for inner in sorted(datadir.glob("*/pgdata"), key=lambda p: p.parent.name == "primary"):
            stop(inner.parent)
        return
    pgdata = datadir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    bin_dir = find_bin_dir()
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]),
                   check=False, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def running(datadir: Path | None = None) -> Iterator[str]:
    """A server for the block (in a new folder under the system's temporary folder unless given); yields its URL.

    The server is stopped and its folder removed when the block ends.
    """
    # Not under pytest's tmp_path: that is private to this user, and as root the server runs as `postgres`.
    folder = datadir or Path(tempfile.mkdtemp(prefix="orm-kit-pg-"))
    try:
        yield start(folder)
    finally:
        stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``start DATADIR`` (prints the URL), ``pair DATADIR`` (prints two) or ``stop DATADIR``; the exit code."""
    if len(argv) != 3 or argv[1] not in {"start", "pair", "stop"}:
        print("usage: python -m orm_kit.testing.pgserver start|pair|stop DATADIR", file=sys.stderr)
        return 2
    folder = Path(argv[2])
    try:
        if argv[1] == "start":
            print(start(folder))
        elif argv[1] == "pair":
            print("\n".join(start_pair(folder)))
        else:
            stop(folder)
    except PostgresServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
