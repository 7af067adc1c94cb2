"""Resolve the request's credential into an Actor.

Header forms, in this order (API contract, "Authentication"):
`Authorization: Bearer <api key | JWT | user token>`, `Authorization: Token <key>`,
`Authorization: <key>`, `X-API-Key: <key>`, `api_key: <key>`; then the admin secret
(`X-Stateset-Admin-Secret` / `X-Hasura-Admin-Secret` with `X-Account-Id` / `X-Hasura-Org-Id`);
then the `api_key` query parameter; then a logged-in staff session (browsable API).

The query parameter is the least safe form (URLs end up in proxy logs and browser history); it
exists because runserver and gunicorn drop header names with underscores, so `api_key: <key>`
never arrives behind them. Only the credential's id is ever stored, never the parameter.

A bearer credential that is neither an API key nor a user token is a JWT this server verifies
(shared secret, fixed public key, or the issuer's JWKS) or, when no configured key can judge it and
an authentication webhook is configured, whatever that webhook says (see `actor_from_bearer`).
"""

import hmac
import time

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, CSRFCheck

from apps.core.context import ROLES, Actor
from apps.core.errors import AuthenticationFailed, BadRequest, NotFound, PermissionDenied
from apps.core.prepared import PreparedValues

from . import auth_hook, jwks
from .models import APIKey, AuthToken, Membership, Organization, hash_secret

CREDENTIAL_QUERY_PARAM = "api_key"
API_KEY_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_")
USER_TOKEN_PREFIX = "sst_"
LAST_USED_RESOLUTION_SECONDS = 60


def credential_from_headers(meta):
    """The raw credential string the request carries, or ''."""
    authorization = meta.get("HTTP_AUTHORIZATION", "").strip()
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if rest and scheme.lower() in ("bearer", "token", "statesettoken", "basic"):
            return rest.strip()
        return authorization
    return (meta.get("HTTP_X_API_KEY") or meta.get("HTTP_API_KEY") or "").strip()


def credential_from_query(meta):
    """The `api_key` query parameter, or ''. Read from the query string itself: a GET's JSON body
    may stand in for its query parameters, but it never carries a credential."""
    query = meta.get("QUERY_STRING", "")
    if CREDENTIAL_QUERY_PARAM not in query:
        return ""
    return (QueryDict(query).get(CREDENTIAL_QUERY_PARAM) or "").strip()


def organization_by_reference(reference):
    """An organization by id or slug (X-Account-Id, x-hasura-org-id)."""
    if not reference:
        return None
    return (
        Organization.objects.select_related("live_organization", "sandbox")
        .filter(Q(id=reference) | Q(slug=reference), is_active=True)
        .first()
    )


def anonymous_actor(request):
    """The actor of a request without a credential whose X-Account-Id names an active
    organization (what a policy row open to anonymous callers sees), else None. Registered with
    apps.core.context by AccountsConfig.ready(): core's views ask for it without importing accounts."""
    reference = request.META.get("HTTP_X_ACCOUNT_ID", "")
    organization = organization_by_reference(reference) if reference else None
    if organization is None:
        return None
    return Actor(organization=organization, role="anonymous", credential_type="anonymous").with_request(request)


# Per process: until when a credential's last-use marker is known to be in the cache, so that a
# busy credential does not cost a cache round trip on every request. A marker this process set
# lives for the whole resolution; one another process set is re-checked after a second (its
# expiry is unknown), so a write may come at most that much later than before.
_marker_known_until = {}
_MARKER_RECHECK_SECONDS = 1.0


def _touch(model, pk):
    """Record last use at most once a minute per credential: no write on every request."""
    marker = f"last-used:{pk}"
    now = time.monotonic()
    if _marker_known_until.get(marker, 0.0) > now:
        return
    if len(_marker_known_until) > 10_000:
        _marker_known_until.clear()
    if cache.add(marker, 1, LAST_USED_RESOLUTION_SECONDS):
        _marker_known_until[marker] = now + LAST_USED_RESOLUTION_SECONDS
        model.objects.filter(pk=pk).update(last_used_at=timezone.now())
    else:
        _marker_known_until[marker] = now + _MARKER_RECHECK_SECONDS


_ORGANIZATION_COLUMNS = [field.attname for field in Organization._meta.concrete_fields]
_KEY_COLUMNS = ("id", "kind", "mode", "scopes", "expires_at", "revoked_at")
# The key and both twins of its organization in one query, compiled once (it runs on every request).
_key_lookup = PreparedValues(
    lambda secret_hash: APIKey.objects.filter(secret_hash=secret_hash).values(
        *_KEY_COLUMNS,
        *(f"organization__{name}" for name in _ORGANIZATION_COLUMNS),
        *(f"organization__sandbox__{name}" for name in _ORGANIZATION_COLUMNS),
    )
)


def _organization_from(row, prefix):
    values = [row[f"{prefix}{name}"] for name in _ORGANIZATION_COLUMNS]
    if values[0] is None:
        return None
    return Organization.from_db("default", _ORGANIZATION_COLUMNS, values)


def actor_from_api_key(secret):
    rows = _key_lookup(hash_secret(secret))
    if not rows:
        raise AuthenticationFailed("Invalid API key provided.", code="INVALID_API_KEY")
    key = rows[0]
    if key["revoked_at"] is not None:
        raise AuthenticationFailed("This API key has been revoked.", code="INVALID_API_KEY")
    if key["expires_at"] is not None and key["expires_at"] <= timezone.now():
        raise AuthenticationFailed("This API key has expired.", code="EXPIRED_API_KEY")
    live = _organization_from(key, "organization__")
    if not live.is_active:
        raise AuthenticationFailed("This organization is inactive.", code="INVALID_API_KEY")
    if key["mode"] == APIKey.Mode.LIVE:
        organization = live
    else:
        organization = _organization_from(key, "organization__sandbox__")
        # The sandbox's `live` property needs its live twin; we already hold it.
        organization.live_organization = live
    _touch(APIKey, key["id"])
    if key["kind"] == APIKey.Kind.SECRET:
        role = "admin"
    elif key["kind"] == APIKey.Kind.RESTRICTED:
        role = "manager"
    else:
        role = "anonymous"
    return Actor(
        organization=organization,
        role=role,
        credential_type="api_key",
        credential_id=key["id"],
        api_key_kind=key["kind"],
        scopes=tuple(key["scopes"] or ()),
    )


class UnverifiableToken(Exception):
    """No configured key can judge this JWT (none configured, another algorithm, or a `kid` the
    JWKS lacks): it was issued by someone else, so the authentication webhook may vouch for it."""


def _verification_key(token):
    """The key and algorithm that judge `token`, by its header; raises UnverifiableToken.

    A JWKS key is used when the token names a `kid` the issuer's key set holds; otherwise the
    fixed public key judges RS256 tokens, and the shared secret HS256 ones when there is no public
    key (the public key replaces the secret, it does not add to it).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise UnverifiableToken from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if settings.STATESET_JWT_JWKS_URL and isinstance(kid, str) and algorithm in jwks.KEY_TYPES:
        try:
            return jwks.signing_key(settings.STATESET_JWT_JWKS_URL, kid, algorithm), algorithm
        except jwks.UnknownKey:
            pass
    if settings.STATESET_JWT_PUBLIC_KEY:
        if algorithm == "RS256":
            return settings.STATESET_JWT_PUBLIC_KEY, algorithm
    elif settings.STATESET_JWT_SECRET and algorithm == "HS256":
        return settings.STATESET_JWT_SECRET, algorithm
    raise UnverifiableToken


def _issuer_and_audience():
    """The decode arguments checking issuer and audience, only when configured (a shared-secret
    deployment often sets neither); audiences may be a comma list, any one matching."""
    checks, required = {}, ["exp"]
    if settings.STATESET_JWT_ISSUER:
        checks["issuer"] = settings.STATESET_JWT_ISSUER
        required.append("iss")
    audiences = [audience.strip() for audience in settings.STATESET_JWT_AUDIENCE.split(",") if audience.strip()]
    if audiences:
        checks["audience"] = audiences
        required.append("aud")
    return checks, required


def _jwt_claims(token):
    key, algorithm = _verification_key(token)
    checks, required = _issuer_and_audience()
    try:
        payload = jwt.decode(token, key, algorithms=[algorithm], options={"require": required}, **checks)
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("The token has expired.", code="INVALID_TOKEN") from None
    except jwt.InvalidTokenError as exc:
        raise AuthenticationFailed(f"Invalid token: {exc}", code="INVALID_TOKEN") from None
    claims = payload.get(settings.STATESET_JWT_CLAIMS_NAMESPACE)
    if not isinstance(claims, dict):
        raise AuthenticationFailed(
            f"The token has no claims under {settings.STATESET_JWT_CLAIMS_NAMESPACE!r}.", code="INVALID_TOKEN"
        )
    return {str(k).lower(): v for k, v in claims.items()}


def actor_from_jwt(token, requested_role):
    claims = _jwt_claims(token)
    allowed = claims.get("x-hasura-allowed-roles") or []
    if isinstance(allowed, str):
        allowed = [allowed]
    default_role = claims.get("x-hasura-default-role") or "user"
    role = (requested_role or default_role).strip().lower()
    if role not in [str(r).lower() for r in allowed] and role != default_role:
        raise PermissionDenied(f"The token does not allow the role {role!r}.", param="X-Hasura-Role")
    if role not in ROLES:
        raise PermissionDenied(f"Unknown role {role!r}.", param="X-Hasura-Role")
    return _session_actor(claims, role, "jwt", "The token names no known organization.")


def _session_actor(variables, role, credential_type, no_organization):
    """The actor of Hasura session variables (lower-cased keys) acting as `role`: the JWT and the
    authentication webhook build the same one."""
    organization = organization_by_reference(str(variables.get("x-hasura-org-id") or ""))
    if organization is None:
        raise AuthenticationFailed(no_organization, code="INVALID_TOKEN")
    user_id = str(variables.get("x-hasura-user-id") or "")
    return Actor(
        organization=organization,
        role=role,
        credential_type=credential_type,
        credential_id=f"{credential_type}:{user_id or organization.id}",
        user_id=user_id,
    )


def actor_from_auth_hook(request):
    """The actor the authentication webhook vouches for. Unlike a JWT, the hook picks the role
    itself (it sees the client's X-Hasura-Role header), so an unknown role refuses the request."""
    # getattr: a WebSocket's connection_init is authenticated through a request-like object that
    # may carry only META.
    request_info = {"method": getattr(request, "method", ""), "path": getattr(request, "path", "")}
    variables = auth_hook.session_variables(request.META, request_info)
    role = variables.get("x-hasura-role")
    if not isinstance(role, str) or role.strip().lower() not in ROLES:
        raise AuthenticationFailed("The authentication hook gave no known role.", code="INVALID_TOKEN")
    no_organization = "The authentication hook named no known organization."
    return _session_actor(variables, role.strip().lower(), "auth_hook", no_organization)


def actor_from_bearer(credential, request):
    """A credential that is neither an API key nor a user token.

    A JWT some configured key can judge is judged here, and a failure (bad signature, expired,
    wrong issuer or audience, an unreachable JWKS) is final. Everything else, a JWT no configured
    key matches or an opaque token, goes to the authentication webhook when one is configured
    and the credential came in the Authorization header (the header the hook is sent); without a
    webhook it is refused as before.
    """
    meta = request.META
    webhook = bool(settings.STATESET_AUTH_WEBHOOK_URL) and bool(meta.get("HTTP_AUTHORIZATION"))
    if credential.count(".") == 2:
        try:
            return actor_from_jwt(credential, meta.get("HTTP_X_HASURA_ROLE", ""))
        except UnverifiableToken:
            if not webhook:
                raise AuthenticationFailed("No configured key can verify this token.", code="INVALID_TOKEN") from None
    elif not webhook:
        raise AuthenticationFailed("Invalid API key provided.", code="INVALID_API_KEY")
    return actor_from_auth_hook(request)


def actor_from_user_token(secret):
    token = (
        AuthToken.objects.select_related("user", "organization", "organization__live_organization")
        .filter(token_hash=hash_secret(secret))
        .first()
    )
    if token is None or token.revoked_at is not None:
        raise AuthenticationFailed("Invalid or revoked token.", code="INVALID_TOKEN")
    if token.expires_at <= timezone.now():
        raise AuthenticationFailed("The token has expired.", code="INVALID_TOKEN")
    if not token.user.is_active:
        raise AuthenticationFailed("The user is inactive.", code="INVALID_TOKEN")
    membership = Membership.objects.filter(user=token.user, organization=token.organization.live).first()
    if membership is None:
        raise AuthenticationFailed("The user is no longer a member of this organization.", code="INVALID_TOKEN")
    _touch(AuthToken, token.pk)
    return Actor(
        organization=token.organization,
        role=membership.role,
        credential_type="token",
        credential_id=token.pk,
        user_id=str(token.user_id),
    ), token.user


def actor_from_admin_secret(meta):
    reference = meta.get("HTTP_X_ACCOUNT_ID") or meta.get("HTTP_X_HASURA_ORG_ID") or ""
    if not reference:
        raise BadRequest("The admin secret needs X-Account-Id naming the organization.", param="X-Account-Id")
    organization = organization_by_reference(reference)
    if organization is None:
        raise NotFound("No such organization.", param="X-Account-Id")
    return Actor(organization=organization, role="admin", credential_type="admin_secret", credential_id="admin_secret")


def _session_organization(memberships, reference):
    """The membership and the organization X-Account-Id names among the user's organizations and
    their sandbox twins (without the header: the first live one)."""
    for membership in memberships:
        live = membership.organization
        if not reference:
            return membership, live
        for organization in (live, getattr(live, "sandbox", None)):
            if organization is not None and reference in (organization.id, organization.slug):
                return membership, organization
    return None, None


def actor_from_session(request):
    user = getattr(request._request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("organization", "organization__sandbox").filter(user=user)
    membership, organization = _session_organization(memberships, request.META.get("HTTP_X_ACCOUNT_ID", ""))
    if membership is None:
        return None
    return Actor(
        organization=organization,
        role=membership.role,
        credential_type="session",
        credential_id=f"session:{user.pk}",
        user_id=str(user.pk),
    )


class StatesetAuthentication(BaseAuthentication):
    """DRF authentication: `request.auth` is the Actor, `request.user` the staff user if any."""

    def authenticate(self, request):
        meta = request.META
        admin_secret = meta.get("HTTP_X_STATESET_ADMIN_SECRET") or meta.get("HTTP_X_HASURA_ADMIN_SECRET")
        credential = credential_from_headers(meta)
        if not credential and not admin_secret:
            credential = credential_from_query(meta)
        user = None
        if credential:
            if credential.startswith(API_KEY_PREFIXES):
                actor = actor_from_api_key(credential)
            elif credential.startswith(USER_TOKEN_PREFIX):
                actor, user = actor_from_user_token(credential)
            else:
                actor = actor_from_bearer(credential, request)
        elif admin_secret:
            configured = settings.STATESET_ADMIN_SECRET
            if not configured or not hmac.compare_digest(admin_secret.encode(), configured.encode()):
                raise AuthenticationFailed("Invalid admin secret.", code="INVALID_API_KEY")
            actor = actor_from_admin_secret(meta)
        else:
            actor = actor_from_session(request)
            if actor is None:
                return None
            self._enforce_csrf(request)
            user = request._request.user
        actor = actor.with_request(request)
        return (user or _CredentialUser(actor), actor)

    def authenticate_header(self, request):
        return 'Bearer realm="stateset"'

    @staticmethod
    def _enforce_csrf(request):
        def dummy_get_response(request):  # pragma: no cover - CSRFCheck needs a callable
            return None

        check = CSRFCheck(dummy_get_response)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise PermissionDenied(f"CSRF failed: {reason}")


class _CredentialUser:
    """`request.user` for credentials that are not a staff user (API keys, JWT, admin secret)."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    pk = None
    id = None

    def __init__(self, actor):
        self.actor = actor

    def __str__(self):
        return self.actor.actor_id
