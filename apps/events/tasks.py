"""Celery tasks of webhook delivery. They take ids, return early when the work is done (the
claim in `webhook_delivery_attempt`), and run with acks_late + reject_on_worker_lost so a killed
worker's message goes back to the broker; the sweeper covers what the broker cannot."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import webhook_deliveries_sweep, webhook_delivery_attempt


@shared_task(
    name="events.deliver_webhook",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # Only the database being briefly unreachable is worth a task retry; HTTP failures are
    # recorded as attempts and rescheduled by the delivery's own schedule.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=5,
)
def deliver_webhook_task(delivery_id):
    attempt = webhook_delivery_attempt(delivery_id)
    return attempt.pk if attempt is not None else None


@shared_task(name="events.sweep", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sweep_task():
    return len(webhook_deliveries_sweep())
