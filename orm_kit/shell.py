"""A Python prompt with a database open and the models and repositories at hand (``orm-kit shell``).

    from orm_kit.shell import interact, namespace
    names = namespace(db, MODELS, [ServiceRepository, DeploymentRepository])
    interact(names)                       # IPython when it is installed, else the standard library's prompt
    interact(names, command="print(Team.select().count())")       # run code instead of a prompt

The namespace holds ``db``, every model by its class name, every repository class, and one instance of
each repository on ``db`` named after what it holds (``ServiceRepository`` -> ``services``). IPython comes
with ``pip install 'orm-kit[shell]'``; ``interface="python"`` keeps the plain prompt (with tab completion
of the names when readline is there).
"""

from __future__ import annotations

import code
import re
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from orm_kit.errors import ConfigurationError

__all__ = ["INTERFACES", "banner", "interact", "namespace", "repository_name"]

INTERFACES = ("auto", "ipython", "python")


def repository_name(repository: type[Any]) -> str:
    """The name of a repository's instance in the shell: ``ServiceRepository`` -> ``services``."""
    stem = repository.__name__.removesuffix("Repository") or repository.__name__
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()
    return snake + ("es" if snake.endswith(("s", "x", "sh", "ch")) else "s")


def namespace(db: peewee.Database, models: Iterable[type[peewee.Model]], repositories: Iterable[type[Any]] = (),
              extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """The shell's names: ``db``, the models, the repository classes and an instance of each on ``db``."""
    names: dict[str, object] = {"db": db}
    for model in models:
        names[model.__name__] = model
    for repository in repositories:
        names[repository.__name__] = repository
        names[repository_name(repository)] = repository(db)
    names.update(extra or {})
    return names


def banner(names: Mapping[str, object], where: str) -> str:
    """What the prompt says first: the database and the names it holds."""
    models = sorted(n for n, v in names.items() if isinstance(v, type) and issubclass(v, peewee.Model))
    instances = sorted(n for n, v in names.items() if not isinstance(v, type) and n[:1].islower() and n != "db"
                       and type(v).__name__.endswith("Repository"))
    others = sorted(n for n in names if n not in models and n not in instances and n != "db"
                    and not (isinstance(names[n], type) and names[n].__name__.endswith("Repository")))  # type: ignore[attr-defined]  # checked above
    lines = [f"orm-kit shell on {where}", "  db: the open database"]
    if models:
        lines.append(f"  models: {', '.join(models)}")
    if instances:
        lines.append(f"  repositories: {', '.join(instances)} (and their classes)")
    if others:
        lines.append(f"  also: {', '.join(others)}")
    return "\n".join(lines)


def _ipython() -> Any | None:
    try:
        import IPython
    except ImportError:
        return None
    return IPython


def interact(names: dict[str, object], banner_text: str = "", *, interface: str = "auto",
             command: str | None = None) -> None:
    """Run ``command`` in ``names``, or a prompt over them until EOF (Ctrl-D) or ``exit()``."""
    if interface not in INTERFACES:
        raise ConfigurationError(f"shell interface {interface!r} is not one of {', '.join(INTERFACES)}")
    if command is not None:
        exec(compile(command, "<orm-kit shell -c>", "exec"), names)  # noqa: S102 - the user's own code, by design
        return
    ipython = _ipython() if interface in ("auto", "ipython") else None
    if interface == "ipython" and ipython is None:
        raise ConfigurationError("IPython is not installed: pip install 'orm-kit[shell]' (or ipython), or use "
                                 "--interface python for the standard prompt")
    if ipython is not None:
        from traitlets.config import Config

        config = Config()
        config.TerminalInteractiveShell.banner2 = banner_text + "\n"
        config.TerminalInteractiveShell.confirm_exit = False  # Ctrl-D leaves, as in the plain prompt
        # argv=[]: never read the orm-kit command line as IPython's own options.
        ipython.start_ipython(argv=[], user_ns=names, config=config)
        return
    _readline_completion(names)
    code.interact(banner=banner_text, local=names, exitmsg="")


def _readline_completion(names: dict[str, object]) -> None:
    try:
        import readline
        import rlcompleter
    except ImportError:  # Windows without pyreadline: the prompt works, without completion
        return
    readline.set_completer(rlcompleter.Completer(names).complete)
    readline.parse_and_bind("tab: complete")
