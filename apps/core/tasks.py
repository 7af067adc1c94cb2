from celery import shared_task


@shared_task(name="core.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job_task(job_id):
    from .jobs import job_run

    job_run(job_id)


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records_task():
    from .idempotency import purge_expired

    return purge_expired()
