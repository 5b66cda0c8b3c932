"""Seed data of several apps in one database: each app fills its own tables, and may refer to the others' rows.

    platform = SeedSource(PLATFORM_REGISTRY, Path("seed_data"))                # sets: reference, demo
    flags = SeedSource(SeedRegistry([SeedTable(FeatureFlag, key=("service", "name"))]), Path("seeds"), app="flags")
    load(db, [platform, flags])                  # every set of both, one transaction: flags:defaults after demo
    load(db, [platform, flags], ["flags:defaults"])

A source is one app's seed folder and the registry of the tables its files fill. The registries of all
sources given together are combined (:func:`combined`), in the order given, so that a row of one app
names a row of another by its natural key (``service: checkout-api`` in a feature flag resolves
against the platform's ``service``), and so that ``remove`` refuses to delete a platform row an app's
row still refers to. A file may fill only its own app's tables. Set names do not collide across apps:
an app's sets are ``app:set`` in the bookkeeping and on the command line; the platform's keep their
plain names (``reference``), as they were recorded before apps existed (``app=None``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orm_kit._shown import shown
from orm_kit.errors import ConfigurationError, SeedError
from orm_kit.seeding.files import SeedSet, discover_sets
from orm_kit.seeding.registry import SeedRegistry, SeedTable

__all__ = ["SeedSource", "as_sources", "available", "combined", "set_names"]


@dataclass(frozen=True)
class SeedSource:
    """One app's seed data: the tables its files fill (``registry``), its folder of sets, and its set prefix.

    ``app``: the sets are named ``app:set``; None keeps their plain names (the platform's).
    """

    registry: SeedRegistry
    directory: Path
    app: str | None = None

    def qualified(self, name: str) -> str:
        """A set's name as the bookkeeping and the command line know it."""
        return f"{self.app}:{name}" if self.app else name

    def owner(self) -> str:
        """Who the files belong to, for messages."""
        return f"app {self.app!r}" if self.app else "the platform"


def as_sources(registry: SeedRegistry | Sequence[SeedSource], directory: Path | None = None) -> list[SeedSource]:
    """What a caller gave: one registry with its folder, or several sources."""
    if isinstance(registry, SeedRegistry):
        if directory is None:
            raise ConfigurationError("a seed registry needs the folder of its sets (or pass SeedSource objects)")
        return [SeedSource(registry, Path(directory))]
    sources = list(registry)
    if not sources:
        raise ConfigurationError("no seed sources given")
    return sources


def set_names(sets: object) -> list[str] | None:
    """``sets`` as a caller gives them: None (every set), or a list or tuple of set names."""
    if sets is None:
        return None
    if not isinstance(sets, list | tuple) or not all(isinstance(name, str) for name in sets):
        raise SeedError(f"sets are a list of set names, e.g. ['reference'] (got {shown(sets)})")
    return list(sets)


def combined(sources: Sequence[SeedSource]) -> SeedRegistry:
    """One registry of every source's tables, in the order given (parents before children across apps too).

    Several folders of one app share its registry: it counts once.
    """
    unique: list[SeedSource] = []
    for source in sources:
        if not any(source.registry is other.registry for other in unique):
            unique.append(source)
    if len(unique) == 1:
        return unique[0].registry
    tables: list[SeedTable] = []
    seen: dict[str, SeedSource] = {}
    for source in unique:
        for table in source.registry.tables:
            if table.name in seen:
                raise ConfigurationError(
                    f"seed table {table.name!r} is registered by {seen[table.name].owner()} and by {source.owner()}: "
                    "an app registers only its own tables (remove it from one registry)")
            seen[table.name] = source
            tables.append(table)
    return SeedRegistry(tables)


def available(sources: Sequence[SeedSource], *, missing_ok: bool = False) -> dict[str, tuple[SeedSet, SeedSource]]:
    """Every set of every source by its qualified name (a source's folder must exist unless ``missing_ok``)."""
    found: dict[str, tuple[SeedSet, SeedSource]] = {}
    for source in sources:
        if missing_ok and not source.directory.is_dir():
            continue
        for name, seed_set in discover_sets(source.directory).items():
            qualified = source.qualified(name)
            if qualified in found:
                raise SeedError(f"two seed sets are named {qualified!r} ({source.directory} and "
                                f"{found[qualified][1].directory}): rename one (or, to load a --seeds folder "
                                "instead of the app's own, pass --replace-seeds)")
            found[qualified] = (dataclasses.replace(seed_set, name=qualified), source)
    return found


def table_for(source: SeedSource, registry: SeedRegistry, table: str) -> SeedTable | None:
    """The table a file of ``source`` names, if that source may fill it; a SeedError when another app owns it."""
    mine = source.registry.by_name.get(table)
    if mine is not None or table not in registry.by_name:
        return mine
    raise SeedError(f"table {shown(table)} is not one of {source.owner()}'s seed tables: its files fill only "
                    f"{', '.join(source.registry.by_name) or 'none'}, and refer to other apps' rows by natural key")
