from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Plan
from apps.accounts.services import organization_create
from apps.core.errors import APIError


class Command(BaseCommand):
    help = "Create an organization (and its sandbox twin for test mode)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--plan", default=Plan.FREE, choices=Plan.values)

    def handle(self, *args, name, slug, plan, **options):
        try:
            organization = organization_create(name=name, slug=slug, plan=plan)
        except APIError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Created organization {organization.slug} ({organization.id}), plan {organization.plan}; "
            f"sandbox {organization.sandbox.slug} ({organization.sandbox.id})"
        )
