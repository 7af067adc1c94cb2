"""Asynchronous jobs: batches larger than the synchronous limit (`GET /v1/jobs/<id>`).

A job row stores a stable registered name (e.g. `customers.batch_create`), its items and the
actor, never a code path: renaming or moving a view cannot break a job already queued. Handlers
are registered with `register_job(name, handler)`; every collection with a create service
registers `<collection>.batch_create` when its routes are registered (apps.core.routing).
"""

from celery import current_app
from django.db import transaction
from django.utils import timezone

from .context import Actor
from .errors import APIError
from .models import Job
from .routing import load_collections
from .serializers import ResourceSerializer

# The task that runs a job (apps.core.tasks), queued by its stable name: the task module calls
# into this one, so this one does not import it back.
RUN_JOB_TASK = "core.run_job"

# name -> handler(*, organization, actor, items) -> the objects created
JOB_HANDLERS = {}


class JobSerializer(ResourceSerializer):
    object_name = "job"

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "result", "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


def register_job(name, handler):
    """Make `handler` runnable as the job `name`. Registering the same handler again (routes are
    loaded once per process, tests may load them twice) is harmless; a different one is a bug."""
    current = JOB_HANDLERS.get(name)
    if current is not None and current != handler:
        raise ValueError(f"The job {name!r} already has a handler")
    JOB_HANDLERS[name] = handler


def job_handler(name):
    """The handler registered as `name`, or None. Handlers of collections are registered with the
    routes, which a worker process has not necessarily loaded: load them first."""
    if name not in JOB_HANDLERS:
        load_collections()
    return JOB_HANDLERS.get(name)


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


def batch_create_job_start(*, organization, actor, name, items):
    """Queue the batch `items` for the handler registered as `name` (`<collection>.batch_create`)."""
    if name not in JOB_HANDLERS:
        # Refused now rather than failing later in the worker.
        raise ValueError(f"No job is registered as {name!r}")
    with transaction.atomic():
        job = Job.objects.create(
            organization=organization,
            created_by=actor.actor_id,
            kind="batch_create",
            payload={"name": name, "items": items, "actor": _actor_payload(actor)},
        )
        transaction.on_commit(lambda: current_app.tasks[RUN_JOB_TASK].delay(job.pk))
    return job


def job_run(job_id):
    """Run a queued job once; a job already started or finished is left alone. A job whose name
    no handler answers to (a handler removed since it was queued, a row written by hand) fails
    with `JOB_UNKNOWN` rather than crashing the worker."""
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = Job.objects.select_related("organization").get(pk=job_id)
    name = job.payload.get("name")
    handler = job_handler(name) if isinstance(name, str) else None
    if handler is None:
        job.status = Job.Status.FAILED
        job.error = {"code": "JOB_UNKNOWN", "message": f"No job is registered as {name!r}.", "detail": None}
    else:
        actor_fields = dict(job.payload.get("actor") or {})
        actor_fields["scopes"] = tuple(actor_fields.get("scopes") or ())
        actor = Actor(organization=job.organization, **actor_fields)
        try:
            created = handler(organization=job.organization, actor=actor, items=job.payload.get("items") or [])
        except APIError as exc:
            job.status, job.error = Job.Status.FAILED, {"code": exc.code, "message": exc.message, "detail": exc.detail}
        else:
            job.status = Job.Status.SUCCEEDED
            job.result = {"created": len(created), "ids": [obj.pk for obj in created]}
    job.finished_at = timezone.now()
    job.payload = {**job.payload, "items": []}  # the items are now rows (or an error); keep the row small
    job.save(update_fields=["status", "error", "result", "finished_at", "payload", "updated_at"])
