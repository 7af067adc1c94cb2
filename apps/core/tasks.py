from celery import shared_task

from .idempotency import purge_expired
from .jobs import RUN_JOB_TASK, job_run


@shared_task(name=RUN_JOB_TASK, acks_late=True, reject_on_worker_lost=True)
def run_job_task(job_id):
    job_run(job_id)


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records_task():
    return purge_expired()
