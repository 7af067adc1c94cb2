"""Benchmark: `GET /v1/events?limit=100` under concurrent load, beside a baseline endpoint that
returns the same page straight from the database (one `json_agg` query, no DRF:
`/bench/baseline/events` in bench/baseline.py), measured in the same run.

    .venv/bin/python bench/events_list.py            # or: make bench
    .venv/bin/python bench/events_list.py --duration 5 --rounds 2 [--load python]

Events have foreign keys (organization, whose `livemode` each event shows) and a JSON body
(`data`, here a customer snapshot of about 1 kB). The setup, server, load generators and figures
are bench/customers_list.py's (read its docstring); this adds 300 events to the organization
`bench` once, and prints requests/s, p50/p99, server CPU per request and the ratio real/baseline.
"""

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import customers_list  # noqa: E402 - after the path is set

EVENT_COUNT = 300
REAL_PATH = "/v1/events?limit=100"
BASELINE_PATH = "/bench/baseline/events"


def seed_events(organization):
    from django.db import connection
    from django.utils import timezone

    from apps.events.models import Event

    missing = EVENT_COUNT - Event.objects.filter(organization=organization).count()
    if missing <= 0:
        return
    start = Event.objects.filter(organization=organization).count()
    now = timezone.now()
    events = []
    for offset in range(missing):
        n = start + offset
        customer_id = f"cus_bench{n % 50:04d}"
        snapshot = {
            "object": "customer",
            "id": customer_id,
            "email": f"customer{n}@example.com",
            "first_name": f"Ada{n}",
            "last_name": f"Lovelace{n}",
            "status": "active",
            "accepts_marketing": bool(n % 2),
            "metadata": {"segment": "retail" if n % 2 else "wholesale", "score": n % 97},
            "tags": ["bench", "vip" if n % 5 == 0 else "standard"],
            "addresses": [{"object": "address", "id": f"addr_bench{n:05d}", "city": "Portland", "country_code": "US"}],
            "created_at": "2024-01-02T03:04:05.678Z",
        }
        events.append(
            Event(
                organization=organization,
                type="customer.updated" if n % 3 else "customer.created",
                api_version="2024-01-01",
                object_type="customer",
                object_id=customer_id,
                sequence=n // 50 + 1,
                data={"object": snapshot, "previous_attributes": {"status": "prospect"} if n % 3 else None},
                request_id=f"req_bench{n:06d}" if n % 4 else "",
                idempotency_key=f"idem-{n}" if n % 7 == 0 else "",
                # Distinct creation times, with fractions of a second (`created` drops them).
                created_at=now - timedelta(seconds=EVENT_COUNT - offset, microseconds=n * 137),
            )
        )
    created = [event.created_at for event in events]
    Event.objects.bulk_create(events)
    # `auto_now_add` overwrote the creation times on insert: set them again.
    for event, created_at in zip(events, created, strict=True):
        event.created_at = created_at
    Event.objects.bulk_update(events, ["created_at"])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Event._meta.db_table}")
    print(f"seeded {missing} events")


def main():
    customers_list.run(__doc__, REAL_PATH, BASELINE_PATH, "events", seed=seed_events)


if __name__ == "__main__":
    main()
