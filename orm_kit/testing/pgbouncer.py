"""A throwaway PgBouncer on 127.0.0.1 in front of a test PostgreSQL server (tests and .ci/run use it).

    python -m orm_kit.testing.pgbouncer start DIR POSTGRES_URL   # prints the URL to connect through it
    python -m orm_kit.testing.pgbouncer stop DIR

    from orm_kit.testing import pgbouncer
    url = pgbouncer.start(Path("/tmp/bouncer"), postgres_url)   # pool_mode = transaction by default
    db = open_database(url + "?pgbouncer=transaction")
    pgbouncer.stop(Path("/tmp/bouncer"))

It needs the ``pgbouncer`` binary (``apt-get install pgbouncer``; PgBouncer 1.18 is what Debian 12
ships). Clients authenticate with SCRAM, as they do to the server, with the test server's user and
password, which PgBouncer then uses itself. PgBouncer will not run as root: as root, it runs as the
``postgres`` user, like the test server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["find_binary", "start", "stop"]


def find_binary() -> str:
    """The pgbouncer executable, or a clear error."""
    for candidate in (os.environ.get("ORM_KIT_PGBOUNCER"), shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("pgbouncer not found: install it (apt-get install pgbouncer) or set ORM_KIT_PGBOUNCER")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(datadir: Path, postgres_url: str, *, pool_mode: str = "transaction", pool_size: int = 20) -> str:
    """Start PgBouncer in ``datadir`` in front of the server of ``postgres_url``; the URL through it."""
    binary = find_binary()
    upstream = urlsplit(postgres_url)
    user, password = unquote(upstream.username or ""), unquote(upstream.password or "")
    datadir = datadir.resolve()
    if datadir.exists():
        stop(datadir)
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True)
    port = _free_port()
    (datadir / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    (datadir / "pgbouncer.ini").write_text(f"""\
[databases]
* = host={upstream.hostname} port={upstream.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {datadir / 'userlist.txt'}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {datadir / 'pgbouncer.log'}
pidfile = {datadir / 'pgbouncer.pid'}
""")
    command = [binary, "-d", str(datadir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        for path in (datadir, datadir / "userlist.txt", datadir / "pgbouncer.ini"):
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed test binary
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                log = (datadir / "pgbouncer.log").read_text() if (datadir / "pgbouncer.log").exists() else ""
                raise SystemExit(f"pgbouncer did not start listening on 127.0.0.1:{port}: {log[-500:]}") from None
            time.sleep(0.05)
    netloc = upstream.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
    return upstream._replace(netloc=netloc, query="").geturl()


def stop(datadir: Path) -> None:
    """Stop the PgBouncer started in ``datadir``, if it runs."""
    pidfile = datadir.resolve() / "pgbouncer.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGINT)  # immediate shutdown
    except (ValueError, ProcessLookupError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    """``start DIR POSTGRES_URL`` (prints the URL through PgBouncer) or ``stop DIR``; the exit code."""
    if len(argv) == 4 and argv[1] == "start":
        print(start(Path(argv[2]), argv[3]))
        return 0
    if len(argv) == 3 and argv[1] == "stop":
        stop(Path(argv[2]))
        return 0
    print("usage: python -m orm_kit.testing.pgbouncer start DIR POSTGRES_URL | stop DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
