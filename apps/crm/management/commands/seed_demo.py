from django.core.management.base import BaseCommand

from apps.accounts.models import Organization, Plan, Role
from apps.accounts.services import api_key_create, organization_create, staff_user_create
from apps.core.context import Actor
from apps.crm.models import Customer
from apps.crm.services import customer_create

# `make run` passes the address it serves on; this is runserver's own default.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"

DEMO_CUSTOMERS = [
    ("ada@example.com", "Ada", "Lovelace", "+44 20 7946 0001", "London", "GB"),
    ("grace@example.com", "Grace", "Hopper", "+1 212 555 0102", "New York", "US"),
    ("alan@example.com", "Alan", "Turing", "+44 161 496 0003", "Manchester", "GB"),
    ("katherine@example.com", "Katherine", "Johnson", "+1 757 555 0104", "Hampton", "US"),
    ("edsger@example.com", "Edsger", "Dijkstra", "+31 20 555 0105", "Amsterdam", "NL"),
    ("barbara@example.com", "Barbara", "Liskov", "+1 617 555 0106", "Boston", "US"),
]


class Command(BaseCommand):
    help = "Load demo data: organization `demo`, a staff admin login, a test secret key, customers."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing if any organization exists")
        parser.add_argument("--email", default="admin@demo.stateset.local")
        parser.add_argument("--password", default="demo-password")
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help=f"where the server will listen, for the URLs printed at the end (default {DEFAULT_BASE_URL})",
        )

    def handle(self, *args, if_empty, email, password, base_url, **options):
        base_url = base_url.rstrip("/")
        if if_empty and Organization.objects.exists():
            self.stdout.write(f"Database already has data; demo data not loaded. Staff admin: {base_url}/admin/")
            return
        organization = organization_create(name="Demo Company", slug="demo", plan=Plan.GROWTH)
        staff_user_create(email=email, password=password, organization=organization, role=Role.ADMIN, superuser=True)
        for target in (organization, organization.sandbox):
            actor = Actor.system(target, "seed_demo")
            for address_email, first, last, phone, city, country in DEMO_CUSTOMERS:
                if Customer.objects.for_org(target).filter(email=address_email).exists():
                    continue
                customer_create(
                    organization=target,
                    actor=actor,
                    data={
                        "email": address_email,
                        "first_name": first,
                        "last_name": last,
                        "phone": phone,
                        "tags": ["demo"],
                        "addresses": [
                            {
                                "first_name": first,
                                "last_name": last,
                                "address_line_1": "1 Demo Street",
                                "city": city,
                                "country_code": country,
                                "is_default_shipping": True,
                                "is_default_billing": True,
                            }
                        ],
                    },
                )
        _, secret = api_key_create(
            organization=organization,
            kind="secret",
            mode="test",
            name="demo test key",
            # A test-mode key belongs to the sandbox, so its creation is recorded there.
            actor=Actor.system(organization.sandbox, "seed_demo"),
        )
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(f"  Staff admin:  {base_url}/admin/  {email} / {password}")
        self.stdout.write(f"  Test secret key (shown once): {secret}")
        self.stdout.write(f"  Try: curl -H 'Authorization: Bearer <key>' {base_url}/v1/customers")
