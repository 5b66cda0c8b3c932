"""typed_usage.py's twin: code that must FAIL ``mypy --strict``, each mistake where mypy has to catch it.

Every line with a deliberate mistake ends with ``# E: <mypy's message>  [<code>]`` (several when mypy
reports several there), as typeshed's and mypy's own test cases do; test_typed_misuse.py runs mypy with
the project's configuration (orm-kit's plugin included) and requires exactly these errors, no more and no
fewer, so a check that stops catching a mistake fails as surely as one that starts flagging good code.
Never run: the functions only have to type-check (badly).
"""

from __future__ import annotations

import uuid

import peewee

from feature_flags.models import FeatureFlag, flags_of
from orm_kit import (
    Deployment,
    DeploymentRepository,
    Environment,
    Repository,
    Service,
    ServiceRepository,
    Team,
    TeamRepository,
)


def issue_examples(db: peewee.Database, service: Service, deployment: Deployment) -> None:
    """The mistakes the typing issue lists: each passed mypy and failed only at run time."""
    services = ServiceRepository(db)
    deployments = DeploymentRepository(db)
    services.create(nmae="x", tier=3)  # E: Unexpected keyword argument "nmae" for "create" of "ServiceRepository"  [call-arg]  # E: Argument "tier" to "create" of "ServiceRepository" has incompatible type "Literal[3]"; expected "Literal['critical', 'high', 'medium', 'low']"  [arg-type]
    services.find(owner__nmae="payments")  # E: Unexpected keyword argument "owner__nmae" for "find" of "ServiceRepository"; did you mean "owner__gte" or "owner__lte"?  [call-arg]
    deployments.history(status="sucess")  # E: Argument "status" to "history" of "DeploymentRepository" has incompatible type "Literal['sucess']"; expected "Literal['created', 'running', 'success', 'failed', 'canceled', 'skipped', 'blocked'] | Sequence[Literal['created', 'running', 'success', 'failed', 'canceled', 'skipped', 'blocked']] | None"  [arg-type]
    Deployment.update(duration_seconds="x")  # E: Argument "duration_seconds" to "update" of "Deployment" has incompatible type "str"; expected "int | Node | None"  [arg-type]
    Service(name=42)  # E: Argument "name" to "Service" has incompatible type "int"; expected "str"  [arg-type]
    _ = deployment.finished_at + 1  # E: Unsupported operand types for + ("None" and "int")  [operator]  # E: Unsupported operand types for + ("datetime" and "int")  [operator]
    _ = service.feature_flags  # E: "Service" has no attribute "feature_flags"  [attr-defined]
    # The same read through the model's own lookups, which orm-kit runs by SQL built once.
    _ = Deployment.get_by_id(deployment.id).finished_at + 1  # E: Unsupported operand types for + ("None" and "int")  [operator]  # E: Unsupported operand types for + ("datetime" and "int")  [operator]
    _ = Deployment.get(Deployment.id == deployment.id).finished_at + 1  # E: Unsupported operand types for + ("None" and "int")  [operator]  # E: Unsupported operand types for + ("datetime" and "int")  [operator]


def reads(service: Service, deployment: Deployment, team: Team) -> None:
    """Every field reads as its Python type: a key as a UUID, a foreign key as its model, a closed set as its values."""
    _ = service.id + 1  # E: Unsupported operand types for + ("UUID" and "int")  [operator]
    _ = deployment.created_at.hex  # E: "datetime" has no attribute "hex"  [attr-defined]
    _ = deployment.service.nmae  # E: "Service" has no attribute "nmae"  [attr-defined]
    _ = team.parent.name  # E: Item "None" of "Team | None" has no attribute "name"  [union-attr]
    _ = deployment.rollback_of.status  # E: Item "None" of "Deployment | None" has no attribute "status"  [union-attr]
    service.tier = "urgent"  # E: Incompatible types in assignment (expression has type "Literal['urgent']", variable has type "Literal['critical', 'high', 'medium', 'low']")  [assignment]
    deployment.status = "done"  # E: Incompatible types in assignment (expression has type "Literal['done']", variable has type "Literal['created', 'running', 'success', 'failed', 'canceled', 'skipped', 'blocked']")  [assignment]


def writes(db: peewee.Database, service: Service, team: Team, environment: Environment) -> None:
    """Constructors, Model.create/insert/update and the repositories' writes: names, values, foreign keys."""
    services = ServiceRepository(db)
    Service.create(name="x", lifecycle="retired", owner=team)  # E: Argument "lifecycle" to "create" of "Service" has incompatible type "Literal['retired']"; expected "Literal['experimental', 'production', 'deprecated']"  [arg-type]
    Service.insert(name="x", ownr=team)  # E: Unexpected keyword argument "ownr" for "insert" of "Service"; did you mean "owner"?  [call-arg]
    Deployment(service=team)  # E: Argument "service" to "Deployment" has incompatible type "Team"; expected "Service | UUID"  [arg-type]
    Deployment(environment_id="prod")  # E: Argument "environment_id" to "Deployment" has incompatible type "str"; expected "int"  [arg-type]
    services.update(service, id=uuid.uuid4())  # E: Unexpected keyword argument "id" for "update" of "ServiceRepository"  [call-arg]
    services.update(service, owner=environment)  # E: Argument "owner" to "update" of "ServiceRepository" has incompatible type "Environment"; expected "Team | int"  [arg-type]
    services.update_where({"descripton": ""}, name="x")  # E: Unexpected TypedDict key "descripton"  [misc]


def filters(db: peewee.Database, team: Team) -> None:
    """Filters: field names, operators (text ones on text fields only), values, orders and unique lookups."""
    services = ServiceRepository(db)
    services.find(name__like="pay%")  # E: Unexpected keyword argument "name__like" for "find" of "ServiceRepository"; did you mean "name__lte", "name__eq", or "name__in"?  [call-arg]
    services.find(lock_version__contains="1")  # E: Unexpected keyword argument "lock_version__contains" for "find" of "ServiceRepository"; did you mean "lock_version__not_in", "lock_version__in", or "lock_version__gt"?  [call-arg]
    services.count(owner=None)  # E: Argument "owner" to "count" of "ServiceRepository" has incompatible type "None"; expected "Team | int"  [arg-type]
    services.exists(created_at__gte="2026-01-01")  # E: Argument "created_at__gte" to "exists" of "ServiceRepository" has incompatible type "str"; expected "datetime"  [arg-type]
    services.delete_where(name__isnull="yes")  # E: Argument "name__isnull" to "delete_where" of "ServiceRepository" has incompatible type "str"; expected "bool"  [arg-type]
    services.page(1, tier__in=["urgent"])  # E: List item 0 has incompatible type "Literal['urgent']"; expected "Literal['critical', 'high', 'medium', 'low']"  [list-item]
    TeamRepository(db).cursor_page(order_by=["-nmae"])  # E: List item 0 has incompatible type "Literal['-nmae']"; expected "Literal['id', '-id', 'name', '-name', 'display_name', '-display_name', 'email', '-email', 'parent', '-parent', 'created_at', '-created_at']"  [list-item]
    services.find_unique("owner", team)  # E: Argument 1 to "find_unique" of "ServiceRepository" has incompatible type "Literal['owner']"; expected "Literal['id', 'name']"  [arg-type]  # E: Argument 2 to "find_unique" of "ServiceRepository" has incompatible type "Team"; expected "UUID | str"  [arg-type]
    services.find_unique("name", 42)  # E: Argument 2 to "find_unique" of "ServiceRepository" has incompatible type "int"; expected "str"  [arg-type]


class NarrowTeams(TeamRepository):
    """A repository that lets callers filter and sort by a few fields only."""

    filter_fields = ("name", "parent")
    sort_fields = ("name",)


def narrowed(db: peewee.Database) -> None:
    """A repository's literal filter_fields and sort_fields narrow what mypy accepts, as they narrow the run time's."""
    teams = NarrowTeams(db)
    teams.find(email="a@example.com", order_by=["-created_at"])  # E: Unexpected keyword argument "email" for "find" of "NarrowTeams"  [call-arg]  # E: List item 0 has incompatible type "Literal['-created_at']"; expected "Literal['name', '-name']"  [list-item]
    teams.find(parent=None, name__startswith="pay", order_by="-name")


def app_models(db: peewee.Database, service: Service, environment: Environment) -> None:
    """An application's own model gets the same checks, through Repository(Model, db) and its typed backrefs."""
    flags = Repository(FeatureFlag, db)
    flags.create(service=service, nmae="dark-launch")  # E: Unexpected keyword argument "nmae" for "create" of "Repository[FeatureFlag]"  [call-arg]
    flags.find(rollout_percent__gt="10")  # E: Argument "rollout_percent__gt" to "find" of "Repository[FeatureFlag]" has incompatible type "str"; expected "int"  [arg-type]
    FeatureFlag(enabled="yes")  # E: Argument "enabled" to "FeatureFlag" has incompatible type "str"; expected "bool"  [arg-type]
    flags_of(environment)  # E: Argument 1 to "__call__" of "Backref" has incompatible type "Environment"; expected "Service"  [arg-type]
