"""Base models every tenant-owned resource inherits from."""

from functools import cache

from django.db import models

from .fields import JSONField
from .ids import id_prefix, mark_test_mode, new_id


def new_job_id():
    return new_id("job")


@cache
def _generated_id_prefix(model):
    pk = model._meta.pk
    return id_prefix(pk.default) if pk.has_default() else None


def _attach_organizations(objs):
    """Load the organizations the rows only know by id, in one query, so that marking a batch's
    ids costs no query per row."""
    field = objs[0]._meta.get_field("organization")
    missing = {obj.organization_id for obj in objs if not field.is_cached(obj)}
    if not missing:
        return
    organizations = field.related_model.objects.in_bulk(missing)
    for obj in objs:
        if not field.is_cached(obj):
            obj.organization = organizations[obj.organization_id]


class ModeMarkedQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(): mark the ids here too.
        objs = list(objs)
        if objs:
            _attach_organizations(objs)
            for obj in objs:
                obj.mark_test_mode_id()
        return super().bulk_create(objs, *args, **kwargs)


class ModeMarkedIdModel(models.Model):
    """A row whose generated id says its mode: a sandbox row's `cus_<ULID>` is saved as
    `cus_test_<ULID>`. Only ids the model's default generated are rewritten, and only on insert."""

    objects = ModeMarkedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self._state.adding:
            self.mark_test_mode_id()
        super().save(*args, **kwargs)

    def id_livemode(self):
        """The mode the id shows; API keys, always on the live organization, use their own."""
        return self.organization.livemode

    def mark_test_mode_id(self):
        prefix = _generated_id_prefix(type(self))
        if prefix is None or self.id_livemode():
            return
        marked = mark_test_mode(self.pk, prefix)
        if len(marked) <= self._meta.pk.max_length:
            self.pk = marked


class TenantQuerySet(ModeMarkedQuerySet):
    """Tenant rows. `for_org` is the only filter by organization: selectors, the policy table's
    `scope_queryset` (API and admin) and services go through it."""

    _scoped_to = None  # the organization id this queryset is already narrowed to

    def for_org(self, organization):
        """The only way in: rows of one organization (a live org or its sandbox twin). Narrowing
        twice to the same organization (a selector, then the policy table) filters once."""
        organization_id = getattr(organization, "pk", organization)
        if self._scoped_to is not None and self._scoped_to == organization_id:
            return self
        scoped = self.filter(organization_id=organization_id)
        scoped._scoped_to = organization_id
        return scoped

    def _clone(self):
        clone = super()._clone()
        clone._scoped_to = self._scoped_to
        return clone

    def for_orgs(self, organizations):
        """Rows of any of several organizations (a queryset or ids), for choices offered to a
        staff user who is a member of more than one (apps.core.admin)."""
        return self.filter(organization__in=organizations)


class TenantModel(ModeMarkedIdModel):
    """A row owned by one organization. The sandbox twin is a separate organization, so
    scoping by organization also separates live from test data."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Who created the row: a user id (staff user or JWT subject) or an API key id. The `user`
    # role's row filter compares against it.
    created_by = models.CharField(max_length=255, blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Job(TenantModel):
    """An asynchronous job (large batches). `GET /v1/jobs/<id>`."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_job_id, editable=False)
    kind = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    payload = JSONField(default=dict)
    result = JSONField(default=dict, blank=True)
    error = JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="core_job_org_created")]


class IdempotencyRecord(models.Model):
    """The first response to a request made with an `Idempotency-Key`, replayed for 24 h."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    credential = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "credential", "key", "method", "path"], name="core_idempotency_unique"
            )
        ]


def new_status_change_id():
    return new_id("sc")


class StatusChange(TenantModel):
    """One move of one object's status, written by apps.core.states.transition() in the moving
    transaction: `GET /v1/<collection>/<id>/history`."""

    id = models.CharField(primary_key=True, max_length=40, default=new_status_change_id, editable=False)
    object_type = models.CharField(max_length=100)  # the model label, "crm.Customer"
    object_id = models.CharField(max_length=64)
    field = models.CharField(max_length=64, default="status")
    from_status = models.CharField(max_length=64)
    to_status = models.CharField(max_length=64)
    reason = models.CharField(max_length=500, blank=True, default="")
    actor_type = models.CharField(max_length=32, blank=True, default="")
    actor_id = models.CharField(max_length=255, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "object_type", "object_id", "-created_at"], name="core_statuschange_object"
            )
        ]

    def __str__(self):
        return f"{self.object_type} {self.object_id}: {self.from_status} -> {self.to_status}"
