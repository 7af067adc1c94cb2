from datetime import UTC, date, datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from apps.events.models import WebhookEndpoint
from apps.events.services import webhook_deliveries_retry_failed


class Command(BaseCommand):
    help = "Attempt failed webhook deliveries again (of enabled endpoints)."

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", help="Only this endpoint (we_...).")
        parser.add_argument("--since", help="Only deliveries created at or after this ISO 8601 time.")

    def handle(self, *args, endpoint=None, since=None, **options):
        target = None
        if endpoint:
            target = WebhookEndpoint.objects.filter(pk=endpoint).first()
            if target is None:
                raise CommandError(f"No such webhook endpoint: {endpoint}")
        since_at = _parse_time(since, "--since") if since else None
        ids = webhook_deliveries_retry_failed(endpoint=target, since=since_at)
        self.stdout.write(f"{len(ids)} failed deliveries queued again.")


def _parse_time(value, name):
    """An ISO 8601 time or date (a date means its midnight); naive values are UTC."""
    try:
        parsed = parse_datetime(value) or datetime.combine(date.fromisoformat(value), time.min)
    except ValueError:
        raise CommandError(f"{name}: {value!r} is not an ISO 8601 date or time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
