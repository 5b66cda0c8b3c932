"""Scaling out, measured: pooled vs unpooled connects, and a read-heavy mix on a primary alone vs with a replica.

    .venv/bin/python bench/bench_scaling.py [--runs 5] [--seconds 3] [--threads 8] [--cycles 300]
    .venv/bin/python bench/bench_scaling.py --primary URL --replica URL     # servers of your own

Without URLs it starts a primary and a streaming hot standby on this machine
(``orm_kit.testing.pgserver.start_pair``: synchronous commit, loopback, SCRAM passwords) and stops
them at the end. Two measurements, each side by side in every run, medians over ``--runs``:

* **connect**: ``db.connect()`` + ``db.close()`` cycles against the primary, unpooled (a new server
  session each time: TCP, SCRAM, backend start) vs pooled (``postgresql+pool://``: a check-out and a
  check-in, which rolls back and resets the session in one round trip). Milliseconds per cycle.
* **90 % reads**: ``--threads`` threads, each its own session on long-lived connections, for
  ``--seconds``: 90 % reads by primary key through a repository, 10 % single-row updates; requests per
  second against the primary alone, the primary plus one replica (read-your-writes on: a thread's read
  after its own write goes to the replica only once the replica has replayed the write), and the same
  with read-your-writes waived (reads in ``db.replica()``), which isolates what the token checks cost.

Both servers share this machine's cores, so a replica here adds no capacity: the ratios show what
routing costs and how many reads it moves, not the gain of a replica on its own hardware.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import peewee

from orm_kit.db import open_database
from orm_kit.model import Model
from orm_kit.replicas import ReplicatedDatabase, open_replicated
from orm_kit.repository import Repository
from orm_kit.testing import pgserver

ROWS = 1000


class Item(Model):
    id = peewee.AutoField()
    n = peewee.IntegerField(default=0)
    label = peewee.CharField(default="")


class Items(Repository[Item]):
    model = Item


def connect_cycle_ms(url: str, cycles: int) -> float:
    """Milliseconds per connect + close on a database opened from ``url``."""
    db = open_database(url, connect=False)
    db.connect()
    db.close()  # warm: the pooled one keeps this connection
    started = time.perf_counter()
    for _ in range(cycles):
        db.connect()
        db.close()
    elapsed = time.perf_counter() - started
    if hasattr(db, "close_all"):
        db.close_all()
    return elapsed / cycles * 1000


def mix_rps(db: peewee.Database, threads: int, seconds: float, *, stale_ok: bool = False) -> float:
    """Requests per second of the 90 % read mix on ``db`` with ``threads`` threads."""
    Item.bind(db)
    items = Items(db)
    counts = [0] * threads
    errors: list[BaseException] = []
    go = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            db.connect(reuse_if_open=True)
            go.wait()
            deadline = time.perf_counter() + seconds
            done = 0
            while time.perf_counter() < deadline:
                key = rng.randint(1, ROWS)
                if rng.random() < 0.9:
                    if stale_ok and isinstance(db, ReplicatedDatabase):
                        with db.replica():
                            items.get(key)
                    else:
                        items.get(key)
                else:
                    Item.update(n=Item.n + 1).where(Item.id == key).execute()
                done += 1
            counts[index] = done
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    go.wait()
    for t in workers:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each read-mix measurement")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=300, help="unpooled connect cycles per run (pooled: 10x)")
    parser.add_argument("--primary", metavar="URL", help="a primary of your own (with --replica)")
    parser.add_argument("--replica", metavar="URL", help="a streaming replica of --primary")
    args = parser.parse_args()

    root: Path | None = None
    if args.primary and args.replica:
        primary, replica = args.primary, args.replica
    else:
        root = Path(tempfile.mkdtemp(prefix="orm-kit-bench-pair-"))
        primary, replica = pgserver.start_pair(root)
    try:
        setup = open_database(primary)
        Item.bind(setup)
        setup.drop_tables([Item])
        setup.create_tables([Item])
        Item.insert_many([{"n": 0, "label": f"item-{i}"} for i in range(ROWS)]).execute()
        setup.close()
        pooled_url = primary.replace("postgresql://", "postgresql+pool://", 1)
        pooled_replica = replica.replace("postgresql://", "postgresql+pool://", 1)

        unpooled, pooled, alone, routed, waived, served = [], [], [], [], [], []
        for run in range(args.runs):
            unpooled.append(connect_cycle_ms(primary, args.cycles))
            pooled.append(connect_cycle_ms(pooled_url, args.cycles * 10))
            single = open_database(pooled_url, connect=False)
            alone.append(mix_rps(single, args.threads, args.seconds))
            single.close_all()  # type: ignore[attr-defined]
            both = open_replicated(pooled_url, [pooled_replica], connect=False)
            assert isinstance(both, ReplicatedDatabase)
            routed.append(mix_rps(both, args.threads, args.seconds))
            stats = both.routing_stats()
            served.append(stats.replica_reads / max(1, stats.replica_reads + stats.primary_reads))
            both.close_all()  # type: ignore[attr-defined]
            both = open_replicated(pooled_url, [pooled_replica], connect=False)
            waived.append(mix_rps(both, args.threads, args.seconds, stale_ok=True))
            both.close_all()  # type: ignore[attr-defined]
            print(f"run {run + 1}: connect {unpooled[-1]:.3f} ms unpooled, {pooled[-1]:.3f} ms pooled; "
                  f"90% reads {alone[-1]:,.0f} req/s primary only, {routed[-1]:,.0f} req/s with a replica "
                  f"({served[-1]:.0%} of reads on it), {waived[-1]:,.0f} req/s without read-your-writes",
                  flush=True)

        def med(values: list[float]) -> float:
            return statistics.median(values)

        print()
        print(f"medians of {args.runs} runs, {args.threads} threads, {args.seconds:g} s per mix measurement")
        print(f"{'':34} {'value':>12} {'ratio':>8}")
        print(f"{'connect+close, unpooled (ms)':34} {med(unpooled):12.3f} {'1.00x':>8}")
        print(f"{'connect+close, pooled (ms)':34} {med(pooled):12.3f} {med(unpooled) / med(pooled):7.1f}x cheaper")
        print(f"{'90% reads, primary only (req/s)':34} {med(alone):12,.0f} {'1.00x':>8}")
        print(f"{'90% reads, primary + 1 replica':34} {med(routed):12,.0f} {med(routed) / med(alone):7.2f}x")
        print(f"{'  the same, read-your-writes waived':34} {med(waived):12,.0f} {med(waived) / med(alone):7.2f}x")
        print(f"{'reads the replica answered (RYW on)':34} {med(served):12.0%}")
    finally:
        if root is not None:
            pgserver.stop(root)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
