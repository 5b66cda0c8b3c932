"""Small builders for test rows: valid by default, overridable per test."""

from __future__ import annotations

import datetime
import hashlib
import itertools
from typing import Any

from orm_kit.models import Deployment, Environment, Incident, Release, Service, Team

_n = itertools.count(1)
UTC = datetime.UTC


def sha(seed: object) -> str:
    return hashlib.sha1(str(seed).encode()).hexdigest()


def team(**kw: Any) -> Team:
    kw.setdefault("name", f"team-{next(_n)}")
    return Team.create(**kw)


def environment(**kw: Any) -> Environment:
    n = next(_n)
    kw.setdefault("name", f"Environment {n}")
    kw.setdefault("slug", f"env-{n}")
    kw.setdefault("tier", "production")
    return Environment.create(**kw)


def service(**kw: Any) -> Service:
    kw.setdefault("name", f"service-{next(_n)}")
    kw.setdefault("tier", "medium")
    if "owner" not in kw:
        kw["owner"] = team()
    return Service.create(**kw)


def release(svc: Service, **kw: Any) -> Release:
    n = next(_n)
    kw.setdefault("version", f"1.{n}.0")
    kw.setdefault("commit_sha", sha(n))
    kw.setdefault("ref", "main")
    kw.setdefault("committed_at", datetime.datetime(2026, 1, 1, tzinfo=UTC))
    return Release.create(service=svc, **kw)


def deployment(svc: Service, env: Environment, **kw: Any) -> Deployment:
    kw.setdefault("status", "success")
    return Deployment.create(service=svc, environment=env, **kw)


def incident(svc: Service, env: Environment, **kw: Any) -> Incident:
    kw.setdefault("severity", "sev2")
    kw.setdefault("title", "checkout errors")
    kw.setdefault("opened_at", datetime.datetime(2026, 1, 2, tzinfo=UTC))
    return Incident.create(service=svc, environment=env, **kw)
