"""Organizations, memberships, staff users, API keys, user tokens and the audit log."""

import hashlib

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models

from apps.core.fields import JSONField
from apps.core.ids import new_id
from apps.core.models import ModeMarkedIdModel, TenantQuerySet


def new_organization_id():
    return new_id("org")


def new_api_key_id():
    return new_id("key")


def new_token_id():
    return new_id("tok")


def new_audit_id():
    return new_id("aud")


def hash_secret(secret):
    """API keys and tokens are high-entropy random strings, so one SHA-256 is enough (no KDF):
    the lookup must stay one indexed query on every request."""
    return hashlib.sha256(secret.encode()).hexdigest()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A staff user; logs in with email (django-allauth)."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    def __str__(self):
        return self.email


class Plan(models.TextChoices):
    FREE = "free"
    STARTER = "starter"
    GROWTH = "growth"
    SCALE = "scale"
    ENTERPRISE = "enterprise"


class OrganizationQuerySet(models.QuerySet):
    def of_member(self, user):
        """The organizations `user` is a member of: the live ones and their sandbox twins (members
        belong to the live organization; the twin shares them)."""
        live_ids = user.memberships.values_list("organization_id", flat=True)
        return self.filter(models.Q(pk__in=live_ids) | models.Q(live_organization_id__in=live_ids))


class Organization(models.Model):
    """A tenant. Every live organization has a sandbox twin (`livemode=False`) that test-mode
    credentials reach; the twin shares the live organization's plan, members and keys."""

    id = models.CharField(primary_key=True, max_length=40, default=new_organization_id, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    plan = models.CharField(max_length=16, choices=Plan.choices, default=Plan.FREE)
    livemode = models.BooleanField(default=True)
    live_organization = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="sandbox"
    )
    # Enterprise plans set their own limits; empty means "the plan's default".
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_per_day = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    concurrent_requests_limit = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name if self.livemode else f"{self.name} (sandbox)"

    @property
    def live(self):
        """The live organization (itself, or the one this sandbox belongs to)."""
        return self if self.livemode else self.live_organization


class Role(models.TextChoices):
    USER = "user"
    MANAGER = "manager"
    ADMIN = "admin"


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="accounts_membership_unique")]

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.role})"


class APIKey(ModeMarkedIdModel):
    class Kind(models.TextChoices):
        SECRET = "secret"
        RESTRICTED = "restricted"
        PUBLISHABLE = "publishable"

    class Mode(models.TextChoices):
        LIVE = "live"
        TEST = "test"

    PREFIXES = {Kind.SECRET: "sk", Kind.RESTRICTED: "rk", Kind.PUBLISHABLE: "pk"}

    id = models.CharField(primary_key=True, max_length=40, default=new_api_key_id, editable=False)
    # Always the live organization; test keys reach its sandbox twin.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    mode = models.CharField(max_length=8, choices=Mode.choices)
    prefix = models.CharField(max_length=16)
    last4 = models.CharField(max_length=4)
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The staff user who created the key, if one did. Not `created_by`: on tenant rows that is the
    # actor id string (apps.core.models.TenantModel), a different thing under the same name.
    created_by_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()  # for_org, like every organization's rows

    class Meta:
        verbose_name = "API key"
        indexes = [models.Index(fields=["organization", "-created_at"], name="accounts_key_org_created")]

    def __str__(self):
        return f"{self.prefix}...{self.last4}"

    @property
    def redacted(self):
        return self.redact(self.prefix, self.last4)

    @property
    def livemode(self):
        return self.is_live(self.mode)

    # The rules behind `redacted` and `livemode`, also applied by the API to list rows
    # (APIKeySerializer.computed_fields), which are not model instances.
    @staticmethod
    def redact(prefix, last4):
        return f"{prefix}...{last4}"

    @classmethod
    def is_live(cls, mode):
        return mode == cls.Mode.LIVE

    def id_livemode(self):
        return self.livemode


class AuthToken(models.Model):
    """A short-lived, revocable token for one staff user (`POST /v1/auth/token`)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_token_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"token {self.id} for {self.user}"


class AuditLog(ModeMarkedIdModel):
    """One row per write: who (user or key), through which credential, from where, what changed."""

    id = models.CharField(primary_key=True, max_length=40, default=new_audit_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=255, blank=True, default="")
    credential = models.CharField(max_length=80, blank=True, default="")
    role = models.CharField(max_length=16, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    device_id = models.CharField(max_length=255, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    before = JSONField(null=True, blank=True)
    after = JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()  # for_org, like every organization's rows

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="accounts_audit_org_created"),
            models.Index(fields=["organization", "object_type", "object_id"], name="accounts_audit_org_object"),
        ]

    def __str__(self):
        return f"{self.action} {self.object_id}"
