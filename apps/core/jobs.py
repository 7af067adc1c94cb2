"""Asynchronous jobs: batches larger than the synchronous limit (`GET /v1/jobs/<id>`)."""

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .context import Actor
from .models import Job
from .serializers import ResourceSerializer


class JobSerializer(ResourceSerializer):
    object_name = "job"

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "result", "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


def _actor_payload(actor):
    return {
        "role": actor.role,
        "credential_type": actor.credential_type,
        "credential_id": actor.credential_id,
        "user_id": actor.user_id,
        "api_key_kind": actor.api_key_kind,
        "scopes": list(actor.scopes),
        "ip_address": actor.ip_address,
        "user_agent": actor.user_agent,
        "device_id": actor.device_id,
        "request_id": actor.request_id,
    }


def batch_create_job_start(*, organization, actor, view_path, items):
    with transaction.atomic():
        job = Job.objects.create(
            organization=organization,
            created_by=actor.actor_id,
            kind="batch_create",
            payload={"view": view_path, "items": items, "actor": _actor_payload(actor)},
        )
        from .tasks import run_job_task

        transaction.on_commit(lambda: run_job_task.delay(job.pk))
    return job


def job_run(job_id):
    """Run a queued job once; a job already started or finished is left alone."""
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = Job.objects.select_related("organization").get(pk=job_id)
    actor_fields = dict(job.payload["actor"])
    actor_fields["scopes"] = tuple(actor_fields.get("scopes") or ())
    actor = Actor(organization=job.organization, **actor_fields)
    view = import_string(job.payload["view"])()
    view.request = None
    view.format_kwarg = None
    view.kwargs = {}
    view.actor_override = actor
    from .errors import APIError

    try:
        created = view.batch_create(job.payload["items"])
    except APIError as exc:
        job.status, job.error = Job.Status.FAILED, {"code": exc.code, "message": exc.message, "detail": exc.detail}
    else:
        job.status = Job.Status.SUCCEEDED
        job.result = {"created": len(created), "ids": [obj.pk for obj in created]}
    job.finished_at = timezone.now()
    job.payload = {**job.payload, "items": []}  # the items are now rows (or an error); keep the row small
    job.save(update_fields=["status", "error", "result", "finished_at", "payload", "updated_at"])
