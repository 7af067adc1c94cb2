"""The policy table: the only place permissions live.

model label x role x operation -> Rule(row filter, writable fields).
REST views (apps.core.views), the admin (apps.core.admin) and a GraphQL layer read it through
`authorize()`, `scope_queryset()` and `check_writable()`.

Roles (API contract): `anonymous` (no credential, or a publishable key: read-only allow-list),
`user` (rows they created), `manager` (all rows of the organization), `admin` (also keys,
webhooks, members, audit log). Secret keys act as `admin`; restricted keys as `manager`
narrowed by their scopes (`customers:read`, `customers:write`, `customers:*`, `*`).
"""

from dataclasses import dataclass

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
    roles: dict  # role -> {operation -> Rule}


POLICIES = {
    "crm.Customer": Policy(
        scope="customers",
        roles={"user": OWN, "manager": FULL, "admin": FULL},
    ),
    "crm.CustomerAddress": Policy(
        scope="customers",
        roles={"user": OWN, "manager": FULL, "admin": FULL},
    ),
    "core.Job": Policy(scope="jobs", roles={"user": {"read": OWN_ROWS}, "manager": READ_ONLY, "admin": READ_ONLY}),
    "accounts.AuditLog": Policy(scope="audit_logs", roles={"admin": READ_ONLY}),
    "accounts.APIKey": Policy(scope="api_keys", roles={"admin": FULL}),
    "events.Event": Policy(scope="events", roles={"manager": READ_ONLY, "admin": READ_ONLY}),
    "events.WebhookEndpoint": Policy(scope="webhooks", roles={"admin": FULL}),
    "events.WebhookDelivery": Policy(scope="webhooks", roles={"admin": {"read": ALL_ROWS, "update": ALL_ROWS}}),
}


def model_label(model):
    return model._meta.label


def register(label, policy):
    """Add a model's row to the table (for apps added later); one row per model."""
    if label in POLICIES:
        raise ValueError(f"{label} already has a policy")
    POLICIES[label] = policy


def _scope_allows(scopes, scope, operation):
    if not scopes:
        return False
    wanted = "read" if operation == "read" else "write"
    for granted in scopes:
        if granted in ("*", f"{scope}:*", f"{scope}:{wanted}"):
            return True
        if wanted == "read" and granted == f"{scope}:write":
            return True
    return False


def authorize(actor, label, operation):
    """The Rule for this actor, or raise: 401 for an anonymous caller, else 403."""
    policy = POLICIES.get(label)
    rule = None
    if policy is not None and actor is not None:
        rule = policy.roles.get(actor.role, {}).get(operation)
        if (
            rule is not None
            and actor.api_key_kind == "restricted"
            and not _scope_allows(actor.scopes, policy.scope, operation)
        ):
            raise PermissionDenied(
                f"This restricted key lacks the scope {policy.scope}:{'read' if operation == 'read' else 'write'}."
            )
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
    queryset = queryset.filter(organization=actor.organization)
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
