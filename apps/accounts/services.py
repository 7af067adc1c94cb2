"""Organizations, keys, tokens and the audit log: every write here goes through these."""

import secrets
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core import policy
from apps.core.changes import record_change
from apps.core.errors import AlreadyExists, AuthenticationFailed, NotFound, PermissionDenied, ValidationFailed
from apps.core.jsonutil import to_jsonable

from .models import APIKey, AuditLog, AuthToken, Membership, Organization, Plan, Role, User, hash_secret

API_KEY_SECRET_BYTES = 24


def audit_record(*, actor, action, obj, before=None, after=None):
    """Write the audit row for one change, in the caller's transaction."""
    return AuditLog.objects.create(
        organization=actor.organization,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        credential=actor.credential_id,
        role=actor.role,
        ip_address=actor.ip_address,
        user_agent=actor.user_agent,
        device_id=actor.device_id,
        request_id=actor.request_id,
        before=to_jsonable(before) if before is not None else None,
        after=to_jsonable(after) if after is not None else None,
    )


def audit_change(change):
    """The audit log's writer for apps.core.changes: one row per recorded change."""
    audit_record(actor=change.actor, action=change.action, obj=change.obj, before=change.before, after=change.after)


@transaction.atomic
def organization_create(*, name, slug=None, plan=Plan.FREE):
    """A live organization and its sandbox twin."""
    slug = slugify(slug or name)
    if not slug:
        raise ValidationFailed("An organization needs a slug.", param="slug")
    if plan not in Plan.values:
        raise ValidationFailed(f"Unknown plan {plan!r}; one of {', '.join(Plan.values)}.", param="plan")
    if Organization.objects.filter(slug__in=[slug, f"{slug}-test"]).exists():
        raise AlreadyExists(f"An organization with slug {slug!r} already exists.", param="slug")
    live = Organization.objects.create(name=name, slug=slug, plan=plan, livemode=True)
    Organization.objects.create(name=name, slug=f"{slug}-test", plan=plan, livemode=False, live_organization=live)
    return live


def organization_set_plan(*, organization, plan):
    live = organization.live
    Organization.objects.filter(pk__in=[live.pk, live.sandbox.pk]).update(plan=plan)


@transaction.atomic
def membership_set(*, organization, user, role=Role.USER):
    membership, _ = Membership.objects.update_or_create(
        organization=organization.live, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def staff_user_create(*, email, password, organization=None, role=Role.ADMIN, superuser=False):
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise AlreadyExists(f"A user with email {email!r} already exists.", param="email")
    if superuser:
        user = User.objects.create_superuser(email=email, password=password)
    else:
        user = User.objects.create_user(email=email, password=password, is_staff=True)
    if organization is not None:
        membership_set(organization=organization, user=user, role=role)
    return user


@transaction.atomic
def staff_user_invite(*, organization, email, role=Role.USER, actor):
    """Makes `email` a staff member of `organization` with `role`, creating the user (no usable
    password) if needed, and emails them once the transaction commits. Inviting someone again
    updates their role; the email goes out again (with a fresh link while no password is set)."""
    organization = organization.live
    if actor.role != "admin" or actor.organization.pk != organization.pk:
        # Members belong to the live organization: a sandbox credential never changes them.
        raise PermissionDenied("Only an admin of the organization, in live mode, can invite staff.")
    if role not in Role.values:
        raise ValidationFailed(f"role must be one of {', '.join(Role.values)}.", param="role")
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("Enter a valid email address.", param="email") from None
    user, _ = User.objects.get_or_create(email=email, defaults={"is_staff": True, "password": make_password(None)})
    if not user.is_staff:
        # Someone who signed up while sign-up was open becomes staff only through an invitation.
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user.is_staff = True
    previous = Membership.objects.filter(organization=organization, user=user).first()
    membership = membership_set(organization=organization, user=user, role=role)
    audit_record(
        actor=actor,
        action="membership.invited",
        obj=membership,
        before={"email": email, "role": previous.role} if previous else None,
        after={"email": email, "role": role},
    )
    transaction.on_commit(partial(_staff_invitation_send, user.pk, organization.pk, role))
    return membership


def _staff_invitation_send(user_id, organization_id, role):
    # Looked up again after commit: the link's key hashes the stored password and last login.
    from allauth.account.adapter import get_adapter

    user = User.objects.get(pk=user_id)
    organization = Organization.objects.get(pk=organization_id)
    get_adapter().send_staff_invitation_mail(user=user, organization=organization, role=role)


def _mode_of(organization):
    return APIKey.Mode.LIVE.value if organization.livemode else APIKey.Mode.TEST.value


def api_key_organization(key):
    """The organization a key reaches: the live one, or its sandbox twin for a test key."""
    return key.organization if key.livemode else key.organization.sandbox


def api_key_list(*, actor):
    """The keys `actor` may see. Keys are stored on the live organization, so scoping by
    organization alone would show a sandbox credential the live keys: a test-mode credential sees
    test keys only. A live credential administers the whole account, sandbox keys included (the
    way an operator gets test keys)."""
    keys = APIKey.objects.filter(organization=actor.organization.live)
    return keys if actor.organization.livemode else keys.filter(mode=APIKey.Mode.TEST)


def _check_key_mode(actor, mode):
    if not actor.organization.livemode and mode != APIKey.Mode.TEST:
        raise ValidationFailed("A test-mode credential can only manage test-mode keys.", param="mode")


@transaction.atomic
def api_key_create(
    *, organization, kind, mode=None, name="", scopes=(), expires_in_days=None, created_by_user=None, actor=None
):
    """Returns (key, secret). The secret is shown this once; only its hash is kept.
    With an actor, the key is of the actor's mode (the default) and never of the other one."""
    if actor is not None:
        if actor.organization.live.pk != organization.live.pk:
            raise PermissionDenied("Keys can only be created for the credential's own organization.")
        mode = mode or _mode_of(actor.organization)
    mode = mode or _mode_of(organization)
    if kind not in APIKey.Kind.values:
        raise ValidationFailed(f"kind must be one of {', '.join(APIKey.Kind.values)}.", param="kind")
    if mode not in APIKey.Mode.values:
        raise ValidationFailed("mode must be live or test.", param="mode")
    if actor is not None:
        _check_key_mode(actor, mode)
    scopes = [s.strip() for s in scopes if s and s.strip()]
    if kind == APIKey.Kind.RESTRICTED and not scopes:
        raise ValidationFailed("A restricted key needs at least one scope (e.g. orders:read).", param="scopes")
    for scope in scopes:
        _check_scope(scope)
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValidationFailed("expires_in_days must be positive.", param="expires_in_days")
    prefix = f"{APIKey.PREFIXES[kind]}_{mode}_"
    secret = prefix + secrets.token_urlsafe(API_KEY_SECRET_BYTES).replace("-", "x").replace("_", "y")
    # Without an actor (fixtures, commands creating an organization's first key) nothing is audited.
    with record_change(APIKey, actor=actor, verb="created", **KEY_RECORDING) as change:
        change.obj = APIKey.objects.create(
            organization=organization.live,
            name=name,
            kind=kind,
            mode=mode,
            prefix=prefix,
            last4=secret[-4:],
            secret_hash=hash_secret(secret),
            scopes=scopes,
            expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
            created_by_user=created_by_user,
        )
    return change.obj, secret


def _check_scope(scope):
    """`*`, `<resource>:read|write|*`, or `<resource>:<action>` for an action the policy table
    gives that resource (`customers:suspend`)."""
    resource, _, operation = scope.partition(":")
    if scope == "*" or (resource and operation in ("read", "write", "*")):
        return
    if resource and operation and operation in policy.action_names(resource):
        return
    actions = sorted(policy.action_names(resource)) if resource else []
    hint = f" or one of its actions ({', '.join(actions)})" if actions else ""
    raise ValidationFailed(
        f"Invalid scope {scope!r}; use resource:read|write|*{hint}, e.g. customers:suspend.", param="scopes"
    )


def _key_snapshot(key):
    return {
        "redacted": key.redacted,
        "kind": key.kind,
        "mode": key.mode,
        "scopes": key.scopes,
        "revoked_at": key.revoked_at,
    }


# Keys are audited, never published as events; their audit entry is this snapshot (no secret hash).
KEY_RECORDING = {"snapshot": _key_snapshot, "emit_event": False, "object_name": "api_key"}


def api_key_revoke(*, key, actor=None):
    if actor is not None and not api_key_list(actor=actor).filter(pk=key.pk).exists():
        # Another organization's key, or one of the other mode: as if it did not exist.
        raise NotFound(f"No such api_key: '{key.pk}'", param="id")
    with record_change(key, actor=actor, verb="revoked", **KEY_RECORDING) as change:
        if change.obj.revoked_at is None:  # revoking twice keeps the first time
            change.obj.revoked_at = timezone.now()
            change.obj.save(update_fields=["revoked_at"])
    return change.obj


def auth_token_create(*, email, password, organization_reference=None, expires_in=None):
    """A short-lived token for a staff user (`POST /v1/auth/token`). Returns (token, secret)."""
    user = authenticate(username=(email or "").strip().lower(), password=password or "")
    if user is None or not user.is_active:
        raise AuthenticationFailed("Invalid email or password.", code="INVALID_API_KEY")
    memberships = Membership.objects.select_related("organization").filter(user=user)
    if organization_reference:
        memberships = [m for m in memberships if organization_reference in (m.organization.id, m.organization.slug)]
    membership = next(iter(memberships), None)
    if membership is None:
        raise AuthenticationFailed("The user is not a member of that organization.", code="INVALID_API_KEY")
    ttl = settings.STATESET_TOKEN_DEFAULT_TTL if expires_in is None else int(expires_in)
    if ttl <= 0 or ttl > settings.STATESET_TOKEN_MAX_TTL:
        raise ValidationFailed(
            f"expires_in must be between 1 and {settings.STATESET_TOKEN_MAX_TTL} seconds.", param="expires_in"
        )
    secret = "sst_" + secrets.token_urlsafe(32)
    token = AuthToken.objects.create(
        user=user,
        organization=membership.organization,
        token_hash=hash_secret(secret),
        expires_at=timezone.now() + timedelta(seconds=ttl),
    )
    return token, secret


def auth_token_revoke(*, token):
    AuthToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
