"""Hand due deliveries to whatever runs them: Celery tasks, or the in-process scheduler.

Queueing is best effort by design: the delivery row is already committed and due, so when the
broker is unreachable we log and let the sweeper queue it later instead of failing the request
whose transaction already committed.
"""

import logging

from celery import current_app
from django.conf import settings
from django.utils import timezone

from .embedded import scheduler

logger = logging.getLogger("stateset.webhooks")

DELIVER_TASK = "events.deliver_webhook"

# Retries further ahead than this are not sent to the broker with an ETA: with Redis, a message
# held that long would outlive the visibility timeout and be delivered twice. The sweeper queues
# them when they fall due.
ETA_MAX_SECONDS = 600
# Kombu retries a failed publish this much before we give up and leave it to the sweeper.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def enqueue_deliveries(delivery_ids):
    for delivery_id in delivery_ids:
        enqueue_delivery(delivery_id)


def enqueue_delivery(delivery_id, at=None):
    if settings.WEBHOOK_DELIVERY_BACKEND == "embedded":
        scheduler.submit(delivery_id, at=at)
        return
    options = {}
    if at is not None:
        delay = (at - timezone.now()).total_seconds()
        if delay > ETA_MAX_SECONDS:
            return
        if delay > 0:
            options["eta"] = at
    try:
        # By its stable name: the task module depends on the services, not the other way round.
        current_app.tasks[DELIVER_TASK].apply_async(
            (delivery_id,), retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options
        )
    except Exception as exc:  # the broker is down: the row stays due and the sweeper queues it
        logger.warning("Could not queue webhook delivery %s (%s); the sweeper will", delivery_id, exc)
