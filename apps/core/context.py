"""Who is acting: the one object services receive as `actor`.

Views build it from the credential (apps.accounts.authentication), the admin from the logged-in
staff user, management commands and tasks use `Actor.system(org)`.
"""

from dataclasses import dataclass, field, replace

from django.conf import settings

ROLES = ("anonymous", "user", "manager", "admin")


def client_ip(request):
    """REMOTE_ADDR, or the first X-Forwarded-For hop when USE_X_FORWARDED_FOR says a trusted
    proxy sets it (otherwise a client could pick its own rate-limit bucket)."""
    if settings.USE_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


@dataclass(frozen=True)
class Actor:
    organization: object  # apps.accounts.models.Organization (live org or its sandbox twin)
    role: str  # anonymous | user | manager | admin | system
    credential_type: str  # api_key | jwt | token | admin_secret | session | anonymous | system
    credential_id: str = ""
    user_id: str = ""
    api_key_kind: str = ""
    scopes: tuple = field(default_factory=tuple)
    ip_address: str | None = None
    user_agent: str = ""
    device_id: str = ""
    request_id: str = ""
    idempotency_key: str = ""

    @property
    def actor_id(self):
        """The id written to `created_by`: the user if there is one, else the credential."""
        return self.user_id or self.credential_id

    @property
    def actor_type(self):
        if self.user_id:
            return "user"
        return {"api_key": "api_key", "admin_secret": "admin_secret", "system": "system"}.get(
            self.credential_type, self.credential_type
        )

    @property
    def livemode(self):
        return self.organization.livemode

    @property
    def rate_limit_key(self):
        """Per credential, else per user, else per IP (contract: rate limits)."""
        if self.credential_id:
            return f"cred:{self.credential_id}"
        if self.user_id:
            return f"user:{self.user_id}"
        return f"ip:{self.ip_address}"

    def with_request(self, request):
        meta = request.META
        ip = client_ip(request)
        return replace(
            self,
            ip_address=ip or None,
            user_agent=meta.get("HTTP_USER_AGENT", "")[:512],
            device_id=meta.get("HTTP_X_DEVICE_ID", "")[:255],
            request_id=getattr(request, "request_id", ""),
            idempotency_key=meta.get("HTTP_IDEMPOTENCY_KEY", "")[:255],
        )

    @classmethod
    def system(cls, organization, name="system"):
        return cls(organization=organization, role="admin", credential_type="system", credential_id=name)


# Who calls without a credential. Organizations live in apps.accounts, above core, so core cannot
# look up the organization an anonymous request names (X-Account-Id): accounts registers the
# resolver when its app is ready, the way it registers its change writer.
_anonymous_actor_resolver = None


def register_anonymous_actor(resolver):
    """`resolver(request)` returns the Actor of a request that carries no credential, or None.
    Called from AppConfig.ready(); the last registration wins."""
    global _anonymous_actor_resolver
    _anonymous_actor_resolver = resolver


def resolve_anonymous_actor(request):
    """The Actor of a request without a credential, or None when nothing names an organization
    (or no app registered a resolver)."""
    if _anonymous_actor_resolver is None:
        return None
    return _anonymous_actor_resolver(request)
