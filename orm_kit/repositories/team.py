"""Teams and the tree they form (``Team.parent``): sub-teams to any depth with one recursive query."""

from __future__ import annotations

import peewee

from orm_kit._shown import shown
from orm_kit.errors import InvalidQueryError
from orm_kit.models import Team
from orm_kit.query.prepared import Param
from orm_kit.repository import Repository

__all__ = ["TeamRepository", "team_tree"]


def team_tree(team_id: int | peewee.Node) -> peewee.CTE:
    """A recursive CTE ``team_tree(id)``: the team and every team below it.

    ``UNION`` (not ``UNION ALL``) drops ids already found, so a cycle of parents ends the recursion
    instead of looping.
    """
    base = Team.select(Team.id).where(Team.id == team_id)
    tree = base.cte("team_tree", recursive=True, columns=("id",))
    child = Team.alias("child")
    below = child.select(child.id).join(tree, on=(child.parent == tree.c.id))
    return tree.union(below)


class TeamRepository(Repository[Team]):
    """Teams: by name, and the sub-teams of a team."""

    model = Team
    search_fields = ("name", "display_name")
    default_order = ("name",)

    def find_by_name(self, name: str) -> Team | None:
        """The team called ``name``, or ``None``."""
        return self.find_unique("name", name)

    def subteams(self, team: Team | int) -> list[Team]:
        """Every team below ``team`` (children, their children, ...), by name; one query."""
        team_id = _team_id(team)

        def build() -> peewee.Query:
            tree = team_tree(Param(0))
            query: peewee.Query = (Team.select().where(Team.id.in_(tree.select_from(tree.c.id)), Team.id != Param(0))
                                   .with_cte(tree).order_by(Team.name))
            return query

        return self.prepared("subteams", build).rows(self.db, [self.param(Team.id, team_id)])


def _team_id(team: Team | int) -> int:
    if isinstance(team, Team):
        if team.id is None:
            raise InvalidQueryError(
                f"team {shown(team.name)} is unsaved (it has no id yet); save it first, or pass a saved team or its id"
            )
        return int(team.id)
    return team
