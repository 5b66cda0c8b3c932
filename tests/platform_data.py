"""A small, hand-built deployment history whose answers are worked out by hand in the tests.

Times are November 2026, UTC. The story (service -> environment, release, outcome):

    d11 search-api -> prod-eu  (no release)  success   Oct 20 10:00-10:05   (before the DORA period)
    d1  checkout   -> staging  1.0.0 (A)     success   Nov 1 09:00-09:10
    d2  checkout   -> prod-eu  1.0.0 (A)     success   Nov 1 12:00-12:30
    d8  ledger     -> prod-eu  2.0.0 (D)     success   Nov 2 11:00-11:15
    d3  checkout   -> staging  1.1.0 (B)     success   Nov 3 09:00-09:05
    d4  checkout   -> prod-eu  1.1.0 (B)     success   Nov 3 12:00-12:20   caused incident i1
    d5  checkout   -> prod-eu  1.0.0 (A)     success   Nov 3 14:00-14:10   rollback of d4
    d7  checkout   -> prod-us  1.1.0 (B)     success   Nov 4 10:00-10:30
    d6  checkout   -> staging  1.2.0 (C)     failed    Nov 5 09:00-09:03
    d9  ledger     -> prod-us  2.0.0 (D)     running   Nov 5 10:00-
    d10 checkout   -> prod-eu  1.2.0 (C)     canceled  Nov 5 12:00-12:01

Commits: A Nov 1 08:00, B Nov 3 08:00, C Nov 5 08:00, D Nov 2 10:00.
Incidents: i1 checkout prod-eu Nov 3 13:00-14:10 (caused by d4); i2 ledger prod-us Nov 4 00:00-02:00;
i3 checkout staging Nov 3 10:00-11:00; i4 ledger prod-eu Nov 6 09:00, unresolved.

Teams: platform > payments > payments-risk, platform > search; marketing; ops-a <-> ops-b (a cycle).
Owners: gateway platform, checkout payments, ledger and fraud payments-risk, search-api search, web
marketing, pager ops-b.
Dependencies (a -> b: a depends on b): web -> gateway, gateway -> checkout, gateway -> search-api,
checkout -> ledger, checkout -> fraud (data), ledger -> fraud, fraud -> checkout (build; a cycle).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from orm_kit.models import Deployment, Environment, Incident, Release, Service, ServiceDependency, Team

import factories

UTC = datetime.UTC


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=UTC)


SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40
SHA_D = "d" * 40


@dataclass
class Platform:
    teams: dict[str, Team]
    services: dict[str, Service]
    envs: dict[str, Environment]
    releases: dict[str, Release]
    deployments: dict[str, Deployment]
    incidents: dict[str, Incident]


def build() -> Platform:
    """Create the dataset in the database the models are bound to."""
    teams: dict[str, Team] = {}
    teams["platform"] = factories.team(name="platform")
    teams["payments"] = factories.team(name="payments", parent=teams["platform"])
    teams["payments-risk"] = factories.team(name="payments-risk", parent=teams["payments"])
    teams["search"] = factories.team(name="search", parent=teams["platform"])
    teams["marketing"] = factories.team(name="marketing")
    teams["ops-a"] = factories.team(name="ops-a")
    teams["ops-b"] = factories.team(name="ops-b", parent=teams["ops-a"])
    Team.update(parent=teams["ops-b"].id).where(Team.id == teams["ops-a"].id).execute()

    owners = {"gateway": "platform", "checkout": "payments", "ledger": "payments-risk", "fraud": "payments-risk",
              "search-api": "search", "web": "marketing", "pager": "ops-b"}
    services = {name: factories.service(name=name, owner=teams[team]) for name, team in owners.items()}
    for a, b, kind in [("web", "gateway", "runtime"), ("gateway", "checkout", "runtime"),
                       ("gateway", "search-api", "runtime"), ("checkout", "ledger", "runtime"),
                       ("checkout", "fraud", "data"), ("ledger", "fraud", "runtime"), ("fraud", "checkout", "build")]:
        ServiceDependency.create(service=services[a], depends_on=services[b], kind=kind)

    envs = {
        "prod-eu": factories.environment(name="Production EU", slug="prod-eu", tier="production"),
        "prod-us": factories.environment(name="Production US", slug="prod-us", tier="production"),
        "staging": factories.environment(name="Staging", slug="staging", tier="staging"),
    }
    releases = {
        "A": factories.release(services["checkout"], version="1.0.0", commit_sha=SHA_A, committed_at=at(1, 8)),
        "B": factories.release(services["checkout"], version="1.1.0", commit_sha=SHA_B, committed_at=at(3, 8)),
        "C": factories.release(services["checkout"], version="1.2.0", commit_sha=SHA_C, committed_at=at(5, 8)),
        "D": factories.release(services["ledger"], version="2.0.0", commit_sha=SHA_D, committed_at=at(2, 10)),
    }
    story = [
        ("d11", "search-api", "prod-eu", None, "success", at(20, 10, month=10), at(20, 10, 5, month=10)),
        ("d1", "checkout", "staging", "A", "success", at(1, 9), at(1, 9, 10)),
        ("d2", "checkout", "prod-eu", "A", "success", at(1, 12), at(1, 12, 30)),
        ("d8", "ledger", "prod-eu", "D", "success", at(2, 11), at(2, 11, 15)),
        ("d3", "checkout", "staging", "B", "success", at(3, 9), at(3, 9, 5)),
        ("d4", "checkout", "prod-eu", "B", "success", at(3, 12), at(3, 12, 20)),
        ("d5", "checkout", "prod-eu", "A", "success", at(3, 14), at(3, 14, 10)),
        ("d7", "checkout", "prod-us", "B", "success", at(4, 10), at(4, 10, 30)),
        ("d6", "checkout", "staging", "C", "failed", at(5, 9), at(5, 9, 3)),
        ("d9", "ledger", "prod-us", "D", "running", at(5, 10), None),
        ("d10", "checkout", "prod-eu", "C", "canceled", at(5, 12), at(5, 12, 1)),
    ]
    deployments: dict[str, Deployment] = {}
    for key, svc, env, rel, status, created, finished in story:
        deployments[key] = factories.deployment(
            services[svc], envs[env], release=releases[rel] if rel else None, status=status,
            created_at=created, started_at=created, finished_at=finished,
            rollback_of=deployments["d4"] if key == "d5" else None)
    incidents = {
        "i1": factories.incident(services["checkout"], envs["prod-eu"], caused_by=deployments["d4"],
                                 opened_at=at(3, 13), resolved_at=at(3, 14, 10)),
        "i2": factories.incident(services["ledger"], envs["prod-us"], opened_at=at(4, 0), resolved_at=at(4, 2)),
        "i3": factories.incident(services["checkout"], envs["staging"], opened_at=at(3, 10), resolved_at=at(3, 11)),
        "i4": factories.incident(services["ledger"], envs["prod-eu"], opened_at=at(6, 9)),
    }
    return Platform(teams, services, envs, releases, deployments, incidents)
