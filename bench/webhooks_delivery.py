"""Benchmark: how many events per second one Celery worker delivers to a local receiver.

    .venv/bin/python bench/webhooks_delivery.py
    .venv/bin/python bench/webhooks_delivery.py --events 3000 --pools solo:1,threads:16

What it does, for each pool (`name:concurrency`):
1. uses the PostgreSQL database `stateset_webhooks_bench` (created and migrated if missing;
   BENCH_DATABASE_URL overrides) and a private redis-server on a free port (never the shared one);
2. creates an organization with one webhook endpoint pointing at an HTTP receiver on loopback
   (Python's ThreadingHTTPServer, answering 200 at once, keep-alive);
3. creates N customers through the real service (`customer_create`: customer row, audit row,
   event, delivery row; the delivery task is queued at commit) while no worker runs;
4. starts ONE worker process (`celery -A stateset worker -P <pool> -c <concurrency>`), and times
   the first to the last request the receiver gets; then checks every delivery row says
   `succeeded` with one attempt, and deletes the organization.

Prints events/s per pool. Each delivery is: claim (UPDATE), load (one joined SELECT), sign three
ways, POST, record (SELECT FOR UPDATE, INSERT attempt, UPDATE delivery) in one transaction.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.webhooks_receiver import Receiver  # noqa: E402
from tests.webhooks_services import PrivateRedis, Worker  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/stateset_webhooks_bench"


def ensure_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def run(pool, concurrency, events, database_url, redis):
    from django.db import transaction

    from apps.accounts.services import organization_create
    from apps.core.context import Actor
    from apps.crm.services import customer_create
    from apps.events.models import WebhookAttempt, WebhookDelivery
    from apps.events.services import webhook_endpoint_create

    with Receiver(record=False) as receiver, tempfile.TemporaryDirectory() as tmp:
        slug = f"whbench-{uuid.uuid4().hex[:8]}"
        organization = organization_create(name="Webhook bench", slug=slug)
        actor = Actor.system(organization)
        try:
            webhook_endpoint_create(
                organization=organization, actor=actor, data={"url": receiver.url, "events": ["customer.*"]}
            )
            started = time.monotonic()
            for start in range(0, events, 500):
                with transaction.atomic():
                    for index in range(start, min(start + 500, events)):
                        customer_create(organization=organization, actor=actor, data={"email": f"c{index}@bench.test"})
            emitted_in = time.monotonic() - started
            worker = Worker(
                broker_url=redis.url,
                database_url=database_url,
                log_path=Path(tmp) / "worker.log",
                pool=pool,
                concurrency=concurrency,
                # Persistent database connections, as in production (the tests use 0).
                extra_env={"LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"), "DB_CONN_MAX_AGE": "60"},
            )
            worker.start()
            try:
                if not receiver.wait_for(events, timeout=max(120, events / 20)):
                    raise SystemExit(f"only {receiver.count}/{events} arrived; worker log:\n{worker.log()[-3000:]}")
                elapsed = receiver.last_at - receiver.first_at
                deadline = time.monotonic() + 60
                deliveries = WebhookDelivery.objects.filter(organization=organization)
                while deliveries.filter(status="succeeded").count() < events and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                worker.stop()
                if os.environ.get("BENCH_WORKER_LOG"):
                    Path(os.environ["BENCH_WORKER_LOG"]).write_text(worker.log())
            succeeded = deliveries.filter(status="succeeded", attempt_count=1).count()
            latencies = list(
                WebhookAttempt.objects.filter(organization=organization).values_list("latency_ms", flat=True)
            )
            rate = (events - 1) / elapsed if elapsed > 0 else float("inf")
            print(
                f"pool={pool} x{concurrency}: {events} events delivered in {elapsed:.2f} s = {rate:,.0f} events/s "
                f"(first to last request; {succeeded}/{events} rows succeeded on the first attempt; "
                f"HTTP latency p50 {statistics.median(latencies):.0f} ms; {events} customers created and "
                f"queued in {emitted_in:.1f} s beforehand)"
            )
            return rate
        finally:
            # The sandbox twin goes with it (CASCADE), and so do the events and deliveries.
            organization.delete()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--pools", default="solo:1,threads:8", help="pool:concurrency, comma separated")
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(database_url)
    redis = PrivateRedis().start()
    try:
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "stateset.settings",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis.url,
                "CELERY_BROKER_URL": redis.url,
                "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
                "LOG_LEVEL": "WARNING",
            }
        )
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        for spec in args.pools.split(","):
            pool, _, concurrency = spec.partition(":")
            run(pool, int(concurrency or 1), args.events, database_url, redis)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
