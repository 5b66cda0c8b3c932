"""No password reaches anything an error carries: its message, args, cause, context, attributes, or the CLI's output.

Passwords are drawn from letters no message uses (``GHJKMNPVWXZ``) mixed with the characters URLs get wrong
(``/ # ? @ : & = %`` unencoded): any three of those letters in a row, anywhere an error leads, is a leak.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orm_kit
from orm_kit.cli import main
from orm_kit.db import open_database, parse_url, redact_url, scrub
from orm_kit.errors import OrmKitError
from orm_kit.replicas import open_replicated

CORE = "GHJKMNPVWXZ"
LEAK = re.compile(f"[{CORE}]{{3}}")


def reachable_text(exc: BaseException) -> Iterator[str]:
    """Every text reachable from ``exc``: messages, reprs, args, attributes, notes, causes and contexts."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BaseException):
            yield str(item)
            yield repr(item)
            todo += [item.__cause__, item.__context__, *item.args, *getattr(item, "__notes__", []),
                     *vars(item).values()]
        elif isinstance(item, str | bytes):
            yield item if isinstance(item, str) else item.decode("utf-8", "replace")
        elif isinstance(item, dict):
            todo += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            todo += list(item)
        else:
            yield repr(item)


def below_the_boundary(exc: BaseException) -> list[str]:
    """The orm-kit frames the traceback still holds, besides the boundary that raised it again."""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "/orm_kit/" in name and not name.endswith("/orm_kit/errors.py"):
            frames.append(f"{name}:{tb.tb_lineno}")
        tb = tb.tb_next
    return frames


def frame_locals(exc: BaseException) -> Iterator[str]:
    """The locals of every orm-kit frame the traceback holds (what a reporter like Sentry records)."""
    tb = exc.__traceback__
    while tb is not None:
        if "/orm_kit/" in tb.tb_frame.f_code.co_filename:
            for name, value in tb.tb_frame.f_locals.items():
                yield f"{name}={value!r}"
        tb = tb.tb_next


def leaks(texts: Iterator[str], password: str) -> list[str]:
    return [text[:200] for text in texts if LEAK.search(text) or password in text]


core_run = st.text(alphabet=CORE, min_size=3, max_size=6)
special = st.sampled_from([*"/#?@:&=%!;+ ", "%2F", "%40", "%zz"])
passwords = st.lists(st.one_of(core_run, special), min_size=1, max_size=6).map("".join).filter(
    lambda p: LEAK.search(p) is not None)
schemes = st.sampled_from(["postgresql", "postgres", "postgresql+pool", "cockroachdb", "crdb+pool", "sqlite", "mysql",
                           "Postgresql", "", "postgresql:"])
slashes = st.sampled_from(["://", ":/", ":", ":///", "//"])
hosts = st.sampled_from(["db", "127.0.0.1:1", "db:5x", "[::1", "[::1]:70000", "db-a,db-b:6432", "", "db:"])
options = st.sampled_from(["", "?max_connections=abc", "?timeout=nan", "?pgbouncer=statement", "?sslmode=require",
                           "?max_lag_seconds=1", "?stale_timeout=-1", "#frag", "?timeout=0", "?password=PVWXZ"])


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str]:
    password = draw(passwords)
    url = f"{draw(schemes)}{draw(slashes)}app:{password}@{draw(hosts)}/platform{draw(options)}"
    return url, password


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(urls())
def test_no_url_error_carries_the_password_anywhere(given_url: tuple[str, str]) -> None:
    url, password = given_url
    assert not leaks(iter([redact_url(url), scrub(f"driver said: {url}", url)]), password)
    calls = [lambda: parse_url(url), lambda: open_database(url, connect=False),
             lambda: open_replicated(url, [url], connect=False)]
    for call in calls:
        try:
            call()
        except OrmKitError as exc:
            found = leaks(reachable_text(exc), password)
            assert not found, found
            assert below_the_boundary(exc) == []  # no frame whose locals hold the URL taken apart
            assert not leaks(frame_locals(exc), password)  # nor the boundary's own frame


@pytest.mark.parametrize("password", ["GHJ/KMN", "NPV#WXZ", "ZXW?VPN", "GH:JKM@NPV", "MNP%zzVWX"])
def test_connect_and_the_cli_never_show_the_password(password: str, tmp_path: Any) -> None:
    url = f"postgresql://app:{password}@127.0.0.1:1/platform"
    with pytest.raises(OrmKitError) as caught:
        orm_kit.connect(url, replicas=[])
    assert not leaks(reachable_text(caught.value), password)
    assert not leaks(frame_locals(caught.value), password)
    for arguments in (["migrate", "status"], ["seed", "status"], ["migrate", "up"]):
        result = CliRunner().invoke(main, ["--database", url, *arguments])
        assert result.exit_code == 1, result.output
        texts = [result.output, *(reachable_text(result.exception) if result.exception else [])]
        assert not leaks(iter(texts), password)
