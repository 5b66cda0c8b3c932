"""Read replicas on a real primary + streaming hot standby: routing, read-your-writes, failures.

Which server ran a statement is read from the statement itself (``inet_server_port()``) wherever
it can be; the pair's primary commits synchronously, so the standby is milliseconds behind, which is
exactly when a read after a write goes stale without read-your-writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

import orm_kit
from orm_kit import replicas
from orm_kit.cli import main as cli
from orm_kit.db import open_database
from orm_kit.errors import ConfigurationError, PrimaryReadOnlyError, RoutingError
from orm_kit.pool import PooledPostgresDatabase
from orm_kit.replicas import PooledReplicatedDatabase, ReplicatedDatabase, open_replicated
from orm_kit.repository import Repository
from orm_kit.testing import pgserver
from orm_kit.transactions import transaction

from conftest import ReplicaPair

pytestmark = pytest.mark.postgres


class Item(peewee.Model):
    n = peewee.IntegerField(default=0)


class Items(Repository[Item]):
    model = Item


def port_of(query: peewee.Query) -> int:
    return int(query.scalar())


def where_select_runs(db: peewee.Database) -> int:
    return port_of(Item.select(peewee.fn.inet_server_port()).limit(1))


def wait_until_replayed(db: ReplicatedDatabase, standby_url: str, timeout: float = 10.0) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    target = replicas.parse_lsn(str(db.execute_sql("SELECT pg_current_wal_insert_lsn()").fetchone()[0]))
    standby = open_database(standby_url)
    try:
        deadline = time.monotonic() + timeout
        while not replicas.has_replayed(
                replicas.parse_lsn(str(standby.execute_sql("SELECT pg_last_wal_replay_lsn()").fetchone()[0])), target):
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.01)
    finally:
        standby.close()


@pytest.fixture
def routed(replica_pair: ReplicaPair) -> Iterator[ReplicatedDatabase]:
    """The pair as one database, with a fresh ``item`` table holding one row, replayed on the standby."""
    db = open_replicated(replica_pair.primary_url, [replica_pair.standby_url], probe_interval=0.05)
    db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
    db.execute_sql("CREATE SCHEMA public")
    db.bind([Item])
    db.create_tables([Item])
    Item.create(n=0)
    wait_until_replayed(db, replica_pair.standby_url)
    db.replica_status(refresh=True)
    yield db
    db.close()


def test_each_statement_kind_runs_where_it_belongs(routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    primary, standby = replica_pair.primary_port, replica_pair.standby_port
    db = routed
    assert where_select_runs(db) == standby
    assert int(db.execute_read_sql("SELECT inet_server_port()").fetchone()[0]) == standby
    # Raw SQL, locking reads and reads with effects go to the primary.
    assert int(db.execute_sql("SELECT inet_server_port()").fetchone()[0]) == primary
    assert port_of(Item.select(peewee.fn.inet_server_port()).for_update()) == primary
    assert port_of(Item.select(peewee.fn.inet_server_port()).for_update("FOR SHARE")) == primary
    assert port_of(Item.select(peewee.fn.inet_server_port()).for_update("FOR KEY SHARE")) == primary
    lock = Item.select(peewee.fn.pg_try_advisory_lock(11), peewee.fn.inet_server_port()).tuples().get()
    assert lock == (True, primary)
    assert db.execute_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 11"
                          ).fetchone()[0] == 1  # held on the primary, where it protects something
    assert Item.select(peewee.fn.pg_advisory_unlock(11)).scalar() is True
    db.execute_sql("CREATE SEQUENCE counter")
    assert Item.select(peewee.fn.nextval("counter"), peewee.fn.inet_server_port()).tuples().get() == (1, primary)
    # Writes, with RETURNING, and a data-modifying CTE.
    cursor = Item.insert(n=6).returning(Item.id, peewee.fn.inet_server_port()).tuples().execute()
    assert [row[1] for row in cursor] == [primary]
    gone = Item.delete().where(Item.n == 6).returning(Item.n).cte("gone")
    moved = Item.select(gone.c.n, peewee.fn.inet_server_port()).from_(gone).with_cte(gone).tuples()
    assert list(moved) == [(6, primary)]
    # Everything inside a transaction, whichever way it was opened.
    with transaction(db):
        assert where_select_runs(db) == primary
    with db.atomic():
        assert where_select_runs(db) == primary
    with db.manual_commit():
        db.begin()
        assert where_select_runs(db) == primary
        db.commit()
    # The explicit overrides.
    wait_until_replayed(db, replica_pair.standby_url)
    with db.primary():
        assert where_select_runs(db) == primary
        with db.replica():
            assert where_select_runs(db) == standby
        assert where_select_runs(db) == primary
    with db.replica():
        Item.update(n=7).execute()  # a write in a replica() block still goes to the primary
        assert where_select_runs(db) == standby
    with transaction(db), pytest.raises(RoutingError, match="replica\\(\\) inside a transaction"):
        db.replica().__enter__()
    # DDL: a standby would refuse it (25006).
    db.execute_sql("CREATE TABLE made_here (port int DEFAULT inet_server_port())")
    db.execute_sql("INSERT INTO made_here DEFAULT VALUES")
    assert db.execute_sql("SELECT port FROM made_here").fetchone()[0] == primary


def test_repository_reads_by_key_go_to_a_replica_and_locking_ones_to_the_primary(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    items = Items(routed)
    created = items.create(n=41)
    before = routed.routing_stats()
    assert items.get(created.id).n == 41  # read-your-writes: the create is there, wherever it was read
    assert items.find_unique("id", created.id) is not None
    wait_until_replayed(routed, replica_pair.standby_url)
    assert items.get(created.id).n == 41
    after = routed.routing_stats()
    assert after.replica_reads + after.primary_reads - before.replica_reads - before.primary_reads == 3
    assert after.replica_reads - before.replica_reads >= 1  # at least the one after catching up
    with transaction(routed):
        assert items.get(created.id, for_update=True).n == 41
        held = routed.execute_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' "
                                  "AND pid = pg_backend_pid()").fetchone()[0]
        assert held >= 1  # the row lock was taken on the primary, in this transaction


def test_repository_listings_compiled_once_still_go_to_a_replica(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    items = Items(routed)
    items.create(n=5)
    wait_until_replayed(routed, replica_pair.standby_url)
    before = routed.routing_stats()
    for _ in range(3):  # the first call compiles the statement, the others reuse it: each is a plain read
        assert [i.n for i in items.find(n=5)] == [5]
        assert items.count(n=5) == 1
    after = routed.routing_stats()
    assert after.replica_reads - before.replica_reads == 6


def _rounds(db: ReplicatedDatabase, start: int, count: int, *, row: int = 1) -> int:
    """Write n=i, then read it back, ``count`` times; how many reads saw an older value."""
    stale = 0
    for i in range(start, start + count):
        if i % 3 == 0:
            with transaction(db):
                Item.update(n=i).where(Item.id == row).execute()
        else:
            Item.update(n=i).where(Item.id == row).execute()
        if i % 2:
            seen = Item.select(Item.n).where(Item.id == row).scalar()
        else:
            seen = db.execute_read_sql("SELECT n FROM item WHERE id = %s", (row,)).fetchone()[0]
        stale += seen != i
    return stale


def test_a_thousand_writes_then_reads_are_never_stale(routed: ReplicatedDatabase) -> None:
    before = routed.routing_stats()
    assert _rounds(routed, 1, 1000) == 0
    served = routed.routing_stats().replica_reads - before.replica_reads
    assert served >= 50, f"only {served} of 1000 reads went to the replica: the test proves little"
    # The control: the same rounds with read-your-writes waived do read stale rows from this standby.
    stale = 0
    with routed.replica():
        for k in range(20):
            stale += _rounds(routed, 2000 + 50 * k, 50)
            if stale:
                break
    assert stale > 0, "the standby was never behind: this pair cannot show a stale read"


def test_threads_each_read_their_own_writes(routed: ReplicatedDatabase) -> None:
    rows = [Item.create(n=0).id for _ in range(4)]
    errors: list[BaseException] = []
    stale: list[int] = []

    def work(row: int) -> None:
        try:
            stale.append(_rounds(routed, 1, 150, row=row))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            routed.close()

    threads = [threading.Thread(target=work, args=(row,)) for row in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and stale == [0, 0, 0, 0]


@pytest.fixture
def delayed_standby(replica_pair: ReplicaPair) -> Iterator[None]:
    """The standby applies each commit 2 s late (recovery_min_apply_delay): healthy, but visibly behind."""
    standby = open_database(replica_pair.standby_url)
    standby.execute_sql("ALTER SYSTEM SET recovery_min_apply_delay = '2s'")
    standby.execute_sql("SELECT pg_reload_conf()")
    time.sleep(0.2)
    try:
        yield
    finally:
        standby.execute_sql("ALTER SYSTEM RESET recovery_min_apply_delay")
        standby.execute_sql("SELECT pg_reload_conf()")
        standby.close()


def test_a_token_carries_read_your_writes_to_another_session(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair, delayed_standby: None) -> None:
    other = open_replicated(replica_pair.primary_url, [replica_pair.standby_url], probe_interval=0.05)
    try:
        Item.update(n=1).execute()
        token = routed.session_token()
        assert token is not None and replicas.format_lsn(replicas.parse_lsn(token)) == token
        assert Item.select(Item.n).scalar() == 1  # this session reads its write...
        Item.bind(other)  # ...another "process" (its own connections and sessions) does not, by itself...
        assert other.session_token() is None
        assert where_select_runs(other) == replica_pair.standby_port
        assert Item.select(Item.n).scalar() == 0
        other.observe(token)  # ...until it takes the token in
        assert Item.select(Item.n).scalar() == 1
        Item.bind(routed)
        seen: list[int] = []

        def another_thread() -> None:  # a thread is a session of its own, too
            seen.append(Item.select(Item.n).scalar())
            routed.observe(token)
            seen.append(Item.select(Item.n).scalar())
            routed.close()

        thread = threading.Thread(target=another_thread)
        thread.start()
        thread.join(30)
        assert seen == [0, 1]
    finally:
        Item.bind(routed)
        other.close()


def test_tokens_are_checked(routed: ReplicatedDatabase) -> None:
    with pytest.raises(RoutingError, match="is not one session_token\\(\\) issued"):
        routed.observe("not-a-token")
    routed.observe(None)  # no token yet (a first request): nothing to wait for
    routed.observe("")
    with transaction(routed):
        Item.update(n=0).execute()
        with pytest.raises(RoutingError, match="take the token after the transaction block ends"):
            routed.session_token()
    assert routed.session_token() is not None


def test_paused_replay_pushes_the_replica_out_and_resume_brings_it_back(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    standby = open_database(replica_pair.standby_url)
    try:
        standby.execute_sql("SELECT pg_wal_replay_pause()")
        Item.update(n=1).execute()
        [status] = routed.replica_status(refresh=True)
        assert not status.healthy and status.problem == "replay is paused (pg_wal_replay_pause())"
        with routed.replica():
            assert where_select_runs(routed) == replica_pair.primary_port
        assert routed.routing_stats().no_healthy_replica >= 1
    finally:
        standby.execute_sql("SELECT pg_wal_replay_resume()")
        standby.close()
    wait_until_replayed(routed, replica_pair.standby_url)
    [status] = routed.replica_status(refresh=True)
    assert status.healthy and status.problem is None and status.lag_bytes is not None
    with routed.replica():
        assert where_select_runs(routed) == replica_pair.standby_port


def test_a_replica_beyond_its_lag_bound_is_skipped(routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    standby = open_database(replica_pair.standby_url)
    bounded = open_replicated(replica_pair.primary_url,
                              [replica_pair.standby_url + "?max_lag_seconds=0.3&max_lag_bytes=100000000"],
                              probe_interval=0.05)
    try:
        standby.execute_sql("ALTER SYSTEM SET recovery_min_apply_delay = '3s'")
        standby.execute_sql("SELECT pg_reload_conf()")
        time.sleep(0.2)
        Item.update(n=1).execute()  # a commit the standby now holds back for 3 s
        deadline = time.monotonic() + 5
        while (status := bounded.replica_status(refresh=True)[0]).healthy:
            assert time.monotonic() < deadline, "the delayed standby was never judged to lag"
            time.sleep(0.05)
        assert status.problem is not None and status.problem.startswith("lagging ")
        assert "behind the primary (bound: 0.3s)" in status.problem
        Item.bind(bounded)
        with bounded.replica():
            assert where_select_runs(bounded) == replica_pair.primary_port
    finally:
        Item.bind(routed)
        standby.execute_sql("ALTER SYSTEM RESET recovery_min_apply_delay")
        standby.execute_sql("SELECT pg_reload_conf()")
        standby.close()
        bounded.close()
    wait_until_replayed(routed, replica_pair.standby_url)
    assert bounded.replica_status(refresh=True)[0].healthy


@pytest.fixture
def extra_standby(replica_pair: ReplicaPair, request: pytest.FixtureRequest) -> Iterator[tuple[Path, str]]:
    """A second standby of the pair's primary, to stop or promote (about 1 s), removed afterwards."""
    slot = f"extra_{request.node.name.split('_')[2]}"
    folder = replica_pair.root / slot
    url = pgserver.start_standby(replica_pair.root / "primary", folder, slot)
    try:
        yield folder, url
    finally:
        pgserver.stop(folder)
        primary = open_database(replica_pair.primary_url)
        primary.execute_sql("SELECT pg_drop_replication_slot(%s)", (slot,))
        primary.close()


def test_a_stopped_standby_falls_back_to_the_primary_and_comes_back(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair, extra_standby: tuple[Path, str]) -> None:
    folder, url = extra_standby
    db = open_replicated(replica_pair.primary_url, [url], probe_interval=0.05)
    db.down_backoff = 0.2
    db.bind([Item])
    extra_port = int(url.rsplit(":", 1)[1].split("/")[0])
    # Another thread holds a connection to the standby from before the outage, idle meanwhile.
    outage_over, other_ports = threading.Event(), []

    def other_thread() -> None:
        with db.replica():
            other_ports.append(where_select_runs(db))
            outage_over.wait(60)
            other_ports.append(where_select_runs(db))
        db.close()

    other = threading.Thread(target=other_thread)
    try:
        wait_until_replayed(db, url)
        with db.replica():
            assert where_select_runs(db) == extra_port
        other.start()
        deadline = time.monotonic() + 10
        while not other_ports:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pgserver.stop(folder)
        with db.replica():
            assert where_select_runs(db) == replica_pair.primary_port  # the read failed over, no error
        stats = db.routing_stats()
        assert stats.retried_on_primary + stats.no_healthy_replica >= 1
        [status] = db.replica_status()
        assert not status.healthy and status.problem is not None and status.problem.startswith("unreachable: ")
        assert pgserver.PASSWORD not in status.problem
        with db.replica():
            assert where_select_runs(db) == replica_pair.primary_port  # left alone meanwhile
        pgserver.restart(folder)
        time.sleep(0.3)  # past down_backoff
        wait_until_replayed(db, url)
        deadline = time.monotonic() + 10
        while not db.replica_status(refresh=True)[0].healthy:
            assert time.monotonic() < deadline, "the restarted standby never came back"
            time.sleep(0.1)
        with db.replica():
            assert where_select_runs(db) == extra_port
        outage_over.set()
        other.join(30)
        # Its connection died with the old server process: it reconnects instead of knocking the
        # replica out again.
        assert other_ports == [extra_port, extra_port]
        assert db.replica_status()[0].healthy
    finally:
        outage_over.set()
        if other.is_alive():
            other.join(30)
        Item.bind(routed)
        db.close()


def test_a_promoted_standby_is_no_longer_used_as_a_replica(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair, extra_standby: tuple[Path, str]) -> None:
    folder, url = extra_standby
    db = open_replicated(replica_pair.primary_url, [replica_pair.standby_url, url], probe_interval=0.05)
    db.bind([Item])
    extra_port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        wait_until_replayed(db, url)
        pgserver.promote(folder)
        statuses = {s.name.split("@")[1].split("/")[0].split(":")[1]: s for s in db.replica_status(refresh=True)}
        promoted = statuses[str(extra_port)]
        assert not promoted.healthy
        assert promoted.problem == "not a standby: pg_is_in_recovery() is false (promoted, or not a replica)"
        assert statuses[str(replica_pair.standby_port)].healthy
        wait_until_replayed(db, replica_pair.standby_url)
        with db.replica():
            assert {where_select_runs(db) for _ in range(20)} == {replica_pair.standby_port}
    finally:
        Item.bind(routed)
        db.close()


def test_a_read_cancelled_by_a_recovery_conflict_runs_again_on_the_primary(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    standby = open_database(replica_pair.standby_url)
    conflicts = "SELECT confl_lock FROM pg_stat_database_conflicts WHERE datname = current_database()"
    before_conflicts = standby.execute_sql(conflicts).fetchone()[0]
    result: list[object] = []

    def read() -> None:
        try:
            with routed.replica():  # the standby takes it; the primary's lock replay then cancels it
                result.append(routed.execute_read_sql(
                    "SELECT n, inet_server_port() FROM item, pg_sleep(1.0) WHERE id = 1").fetchone())
        except BaseException as exc:  # noqa: BLE001 - asserted below
            result.append(exc)
        finally:
            routed.close()

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    locker = open_database(replica_pair.primary_url)
    with locker.atomic():
        locker.execute_sql("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")  # replayed on the standby
    locker.close()
    reader.join(30)
    assert result == [(0, replica_pair.primary_port)]  # answered, by the primary
    assert routed.routing_stats().retried_on_primary == 1
    time.sleep(0.1)
    assert standby.execute_sql(conflicts).fetchone()[0] == before_conflicts + 1  # a real recovery conflict
    standby.close()


def test_a_write_refused_by_a_standby_posing_as_the_primary_is_a_typed_error(
        routed: ReplicatedDatabase, replica_pair: ReplicaPair) -> None:
    swapped = open_replicated(replica_pair.standby_url, [replica_pair.primary_url])  # as after a failover
    swapped.bind([Item])
    try:
        with pytest.raises(PrimaryReadOnlyError) as caught:
            Item.update(n=3).execute()
        message = str(caught.value)
        assert "refused a statement as read-only: it is a hot standby (in_hot_standby = on)" in message
        assert "target_session_attrs=read-write" in message and pgserver.PASSWORD not in message
        assert isinstance(caught.value, peewee.InternalError)
        [status] = swapped.replica_status(refresh=True)
        assert status.problem == "not a standby: pg_is_in_recovery() is false (promoted, or not a replica)"
    finally:
        Item.bind(routed)
        swapped.close()
    # A READ ONLY transaction on the real primary is the caller's choice, not a failover.

    def read_only_write() -> None:
        with transaction(routed):
            routed.execute_sql("SET TRANSACTION READ ONLY")
            Item.update(n=3).execute()

    with pytest.raises(peewee.InternalError) as caught:
        read_only_write()
    assert not isinstance(caught.value, PrimaryReadOnlyError)


def test_a_multi_host_url_finds_the_primary_by_itself(replica_pair: ReplicaPair) -> None:
    hosts = f"127.0.0.1:{replica_pair.standby_port},127.0.0.1:{replica_pair.primary_port}"
    url = replica_pair.primary_url.replace(f"127.0.0.1:{replica_pair.primary_port}", hosts)
    db = open_database(url + "?target_session_attrs=read-write")
    assert db.execute_sql("SELECT inet_server_port()").fetchone()[0] == replica_pair.primary_port
    db.close()


def test_configuration_alone_sets_up_primary_replicas_and_pools(replica_pair: ReplicaPair) -> None:
    primary = replica_pair.primary_url.replace("postgresql://", "postgresql+pool://", 1) + "?max_connections=4"
    standby = replica_pair.standby_url.replace("postgresql://", "postgresql+pool://", 1) + "?max_lag_seconds=2"
    env = {"ORM_KIT_DATABASE_URL": primary, "ORM_KIT_REPLICA_URLS": f" {standby}\n"}
    db = orm_kit.connect(environ=env)
    try:
        assert isinstance(db, PooledReplicatedDatabase) and isinstance(db, PooledPostgresDatabase)
        assert orm_kit.Team._meta.database is db
        [replica] = db._replicas
        assert isinstance(replica.db, PooledPostgresDatabase) and replica.spec.max_lag_seconds == 2.0
        assert "max_lag_seconds" not in replica.db.connect_params
        assert replica.db.connect_params["connect_timeout"] == replicas.REPLICA_CONNECT_TIMEOUT
        db.execute_sql("SELECT 1")
        with db.replica():
            db.execute_read_sql("SELECT 1")
        db.close()  # both connections go back to their pools
        assert db.pool_status().in_use == 0 and replica.db.pool_status().in_use == 0
        assert replica.db.pool_status().idle == 1
    finally:
        db.close_all()
    assert replica.db.pool_status().idle == 0  # shut down with the primary's pool
    alone = orm_kit.connect(environ=env, replicas=[])
    assert isinstance(alone, PooledPostgresDatabase) and not isinstance(alone, ReplicatedDatabase)
    alone.close_all()


def test_replica_urls_from_the_environment() -> None:
    env = {"ORM_KIT_REPLICA_URLS": "postgresql://a:pw@r1/db, postgresql://a:pw@r2a,r2b/db\n postgresql://a@r3/db"}
    assert replicas.replica_urls(env) == ["postgresql://a:pw@r1/db", "postgresql://a:pw@r2a,r2b/db",
                                          "postgresql://a@r3/db"]
    assert replicas.replica_urls({}) == []


@pytest.mark.parametrize(("primary", "replica", "message"), [
    ("sqlite:///x.db", "postgresql://a:topsecret@r/db", "SQLite has no replicas"),
    ("cockroachdb://a:topsecret@c/db", "postgresql://a:topsecret@r/db", "CockroachDB replicates by itself"),
    ("postgresql://a:topsecret@p/db", "cockroachdb://a:topsecret@r/db", "a replica is a PostgreSQL streaming"),
    ("postgresql://a:topsecret@p/db", "postgresql://a:topsecret@r/db?max_lag_seconds=soon",
     "max_lag_seconds is 'soon'; expected a number of seconds from above 0 to 2,147,483.647"),
    ("postgresql://a:topsecret@p/db?max_lag_seconds=1", "postgresql://a:topsecret@r/db",
     "sets max_lag_seconds, which only a replica's URL takes"),
])
def test_bad_replica_configuration_is_refused(primary: str, replica: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_replicated(primary, [replica], connect=False)
    assert message in str(caught.value)
    assert "topsecret" not in str(caught.value)


def test_the_helpers_work_the_same_without_replicas(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    assert replicas.session_token(db) is None
    replicas.observe(db, "0/16B3748")
    with replicas.primary(db), replicas.replica(db):
        db.execute_sql("SELECT 1")
    with pytest.raises(RoutingError):
        replicas.observe(db, "nonsense")
    db.close()


def test_the_cli_and_migrations_always_use_the_primary(routed: ReplicatedDatabase, replica_pair: ReplicaPair,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORM_KIT_REPLICA_URLS", replica_pair.standby_url)
    monkeypatch.setenv("ORM_KIT_DATABASE_URL", replica_pair.primary_url)
    routed.execute_sql("DROP SCHEMA public CASCADE")
    routed.execute_sql("CREATE SCHEMA public")
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output  # DDL on the standby would have failed
    result = CliRunner().invoke(cli, ["seed", "--set", "reference"])
    assert result.exit_code == 0, result.output
    db = orm_kit.connect()  # the library, configured the same way, routes...
    try:
        assert isinstance(db, ReplicatedDatabase)
        assert orm_kit.migrate_up(db) == []  # ...and migrates through the primary (in a transaction)
        wait_until_replayed(db, replica_pair.standby_url)
        assert orm_kit.Team.select().count() > 0
        assert db.routing_stats().replica_reads >= 1
    finally:
        db.close()
