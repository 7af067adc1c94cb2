import getpass

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Organization, Role
from apps.accounts.services import staff_user_create
from apps.core.errors import APIError


class Command(BaseCommand):
    help = "Create a staff user (email login) and optionally make them a member of an organization."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", help="read from the STATESET_PASSWORD variable or a prompt if omitted")
        parser.add_argument("--organization", help="organization slug")
        parser.add_argument("--role", default=Role.ADMIN, choices=Role.values)
        parser.add_argument("--superuser", action="store_true")

    def handle(self, *args, **options):
        import os

        password = options["password"] or os.environ.get("STATESET_PASSWORD") or getpass.getpass("Password: ")
        organization = None
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"], livemode=True).first()
            if organization is None:
                raise CommandError(f"No live organization {options['organization']!r}.")
        try:
            user = staff_user_create(
                email=options["email"],
                password=password,
                organization=organization,
                role=options["role"],
                superuser=options["superuser"],
            )
        except APIError as exc:
            raise CommandError(exc.message) from exc
        where = f" ({options['role']} of {organization.slug})" if organization else ""
        self.stdout.write(f"Created staff user {user.email}{where}")
