"""The policy table: the only place permissions live.

model label x role x operation -> Rule(row filter, writable fields).
REST views (apps.core.views), the admin (apps.core.admin) and a GraphQL layer read it through
`authorize()`, `scope_queryset()` and `check_writable()`.

Roles (API contract): `anonymous` (no credential, or a publishable key: read-only allow-list),
`user` (rows they created), `manager` (all rows of the organization), `admin` (also keys,
webhooks, members, audit log). Secret keys act as `admin`; restricted keys as `manager`
narrowed by their scopes (`customers:read`, `customers:write`, `customers:*`, `*`, and an
action's own scope such as `customers:suspend`).

Operations are read, create, update, delete, and each action by its name (`suspend`, `revoke`).
A Policy lists its actions in `actions` (action -> the roles allowed, or None for every role that
may update); a role given an action uses its "update" rule for the rows, unless its own dict
names the action. `customers:write` (and `:*`) grant every action; `customers:suspend` only that.

Each app registers the rows of its own models from its AppConfig.ready() (its `policies.py`);
this module holds core's rows only.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from .errors import AuthenticationFailed, PermissionDenied

OPERATIONS = ("read", "create", "update", "delete")


@dataclass(frozen=True)
class Rule:
    rows: str = "all"  # "all": every row of the organization; "own": rows whose created_by is the actor
    fields: frozenset | None = None  # writable fields; None means every writable field of the serializer


ALL_ROWS = Rule()
OWN_ROWS = Rule(rows="own")
FULL = {op: ALL_ROWS for op in OPERATIONS}
OWN = {op: OWN_ROWS for op in OPERATIONS}
READ_ONLY = {"read": ALL_ROWS}


@dataclass(frozen=True)
class Policy:
    scope: str  # the restricted-key scope name, e.g. "customers"
    roles: dict  # role -> {operation -> Rule}; an operation may be an action's name
    # action -> the roles that may do it, or None: every role whose dict has an "update" rule.
    actions: dict = field(default_factory=dict)


# Core's own rows; every other app registers its rows from its AppConfig.ready().
POLICIES = {
    "core.Job": Policy(scope="jobs", roles={"user": {"read": OWN_ROWS}, "manager": READ_ONLY, "admin": READ_ONLY}),
}


def model_label(model):
    return model._meta.label


def register(label, policy):
    """Add a model's row to the table (for apps added later); one row per model."""
    if label in POLICIES:
        raise ValueError(f"{label} already has a policy")
    POLICIES[label] = policy


def is_action(operation):
    return operation not in OPERATIONS


def action_names(scope):
    """The actions restricted-key scopes may name for `scope` (`customers` -> {"suspend", ...})."""
    names = set()
    for policy in POLICIES.values():
        if policy.scope == scope:
            names.update(policy.actions)
            for rules in policy.roles.values():
                names.update(name for name in rules if is_action(name))
    return names


def _rule(policy, role, operation):
    rules = policy.roles.get(role, {})
    if operation in rules or not is_action(operation):
        return rules.get(operation)
    allowed = policy.actions.get(operation)
    if allowed is not None and role not in allowed:
        return None
    # An action changes a row: the role acts on the rows its update rule reaches.
    return rules.get("update")


def _scope_allows(scopes, scope, operation):
    granted = set(scopes or ())
    if granted & {"*", f"{scope}:*", f"{scope}:write"}:
        return True  # write grants reads and every action too
    if operation == "read":
        return f"{scope}:read" in granted
    return is_action(operation) and f"{scope}:{operation}" in granted


def _missing_scope(scope, operation):
    if operation == "read":
        return f"{scope}:read"
    if is_action(operation):
        return f"{scope}:{operation} (or {scope}:write)"
    return f"{scope}:write"


def authorize(actor, label, operation):
    """The Rule for this actor, or raise: 401 for an anonymous caller, else 403."""
    policy = POLICIES.get(label)
    rule = None
    if policy is not None and actor is not None:
        rule = _rule(policy, actor.role, operation)
        if (
            rule is not None
            and actor.api_key_kind == "restricted"
            and not _scope_allows(actor.scopes, policy.scope, operation)
        ):
            raise PermissionDenied(f"This restricted key lacks the scope {_missing_scope(policy.scope, operation)}.")
    if rule is None:
        if actor is None or (actor.role == "anonymous" and not actor.api_key_kind):
            raise AuthenticationFailed("No API key provided.", code="MISSING_API_KEY")
        raise PermissionDenied(f"The {actor.role} role may not {operation} {label.split('.')[-1]} objects.")
    return rule


def allows(actor, label, operation):
    try:
        authorize(actor, label, operation)
    except (PermissionDenied, AuthenticationFailed):
        return False
    return True


def row_filter(actor, rule):
    if rule.rows == "own":
        return Q(created_by=actor.actor_id) if actor.actor_id else Q(pk__in=[])
    return Q()


def scope_queryset(actor, label, operation, queryset):
    """The organization's rows this actor may touch for `operation`."""
    rule = authorize(actor, label, operation)
    queryset = queryset.for_org(actor.organization)  # the one tenancy filter (TenantQuerySet)
    condition = row_filter(actor, rule)
    return queryset.filter(condition) if condition else queryset


def check_writable(actor, label, operation, field_names):
    """403 naming the first field the role may not write."""
    rule = authorize(actor, label, operation)
    if rule.fields is None:
        return
    for name in field_names:
        if name not in rule.fields:
            raise PermissionDenied(f"The {actor.role} role may not write {name!r}.", param=name)
