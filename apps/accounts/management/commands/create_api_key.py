from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import APIKey, Organization
from apps.accounts.services import api_key_create
from apps.core.context import Actor
from apps.core.errors import APIError


class Command(BaseCommand):
    help = "Create an API key. The key is printed alone on the last line, once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="organization slug or id")
        parser.add_argument("--kind", required=True, choices=APIKey.Kind.values)
        parser.add_argument("--mode", required=True, choices=APIKey.Mode.values)
        parser.add_argument("--scopes", default="", help="comma list, e.g. orders:read,customers:write")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--name", default="")

    def handle(self, *args, **options):
        reference = options["organization"]
        organization = Organization.objects.filter(livemode=True, slug=reference).first() or (
            Organization.objects.filter(livemode=True, pk=reference).first()
        )
        if organization is None:
            raise CommandError(f"No live organization {reference!r}.")
        # The actor acts in the key's mode: a test key is created (and audited) in the sandbox.
        acting_in = organization if options["mode"] == APIKey.Mode.LIVE else organization.sandbox
        try:
            key, secret = api_key_create(
                organization=organization,
                kind=options["kind"],
                mode=options["mode"],
                name=options["name"],
                scopes=options["scopes"].split(","),
                expires_in_days=options["expires_in_days"],
                actor=Actor.system(acting_in, "manage.py create_api_key"),
            )
        except APIError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created {key.kind} {key.mode} key {key.id} for {organization.slug}:")
        self.stdout.write(secret)
