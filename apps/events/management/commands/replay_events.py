from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.events.models import WebhookEndpoint
from apps.events.services import webhook_events_replay

from .retry_failed_deliveries import _parse_time


class Command(BaseCommand):
    help = (
        "Deliver again to one endpoint the events of a period that it subscribes to "
        "(events it never received get a delivery; the others a fresh attempt)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", required=True, help="The webhook endpoint (we_...).")
        parser.add_argument("--since", required=True, help="Start of the period (ISO 8601, inclusive).")
        parser.add_argument("--until", help="End of the period (ISO 8601, exclusive); default now.")
        parser.add_argument(
            "--type", action="append", dest="types", help="Only these event types (patterns like order.*); repeatable."
        )

    def handle(self, *args, endpoint, since, until=None, types=None, **options):
        target = WebhookEndpoint.objects.select_related("organization").filter(pk=endpoint).first()
        if target is None:
            raise CommandError(f"No such webhook endpoint: {endpoint}")
        if not target.is_enabled:
            raise CommandError(f"Webhook endpoint {endpoint} is disabled; enable it first.")
        since_at = _parse_time(since, "--since")
        until_at = _parse_time(until, "--until") if until else timezone.now()
        if until_at <= since_at:
            raise CommandError("--until must be after --since.")
        count = webhook_events_replay(
            organization=target.organization, endpoint=target, since=since_at, until=until_at, types=types
        )
        self.stdout.write(f"{count} events queued for {target.url}.")
