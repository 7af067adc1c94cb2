"""Base models every tenant-owned resource inherits from."""

from django.db import models

from .ids import new_id


def new_job_id():
    return new_id("job")


class TenantQuerySet(models.QuerySet):
    def for_org(self, organization):
        """The only way in: rows of one organization (a live org or its sandbox twin)."""
        return self.filter(organization=organization)


class TenantModel(models.Model):
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
    payload = models.JSONField(default=dict)
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
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
