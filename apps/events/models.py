"""The outbox: one Event row per domain change, written in the changing transaction."""

from django.db import models

from apps.core.ids import new_id


def new_event_id():
    return new_id("evt")


class Event(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=20)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    # 1, 2, 3... per object: a receiver orders and deduplicates with (object id, sequence).
    sequence = models.PositiveIntegerField()
    data = models.JSONField()
    request_id = models.CharField(max_length=64, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "object_id", "sequence"], name="events_event_object_seq")
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="events_event_org_created"),
            models.Index(fields=["organization", "type"], name="events_event_org_type"),
        ]

    def __str__(self):
        return f"{self.type} {self.object_id} #{self.sequence}"

    @property
    def livemode(self):
        return self.organization.livemode
