"""Seeds the contract check's database; prints the keys and ids as JSON (stdout, one line)."""

import json

import django

django.setup()

from apps.accounts.models import APIKey  # noqa: E402
from apps.accounts.services import api_key_create, organization_create  # noqa: E402
from apps.core.context import Actor  # noqa: E402
from apps.crm.services import customer_create  # noqa: E402
from apps.events.services import webhook_endpoint_create  # noqa: E402


def seed_organization(slug):
    organization = organization_create(name=f"Contract {slug.upper()}", slug=f"contract-{slug}")
    actor = Actor.system(organization, "contract check seed")
    key, secret = api_key_create(
        organization=organization, kind=APIKey.Kind.SECRET, mode=APIKey.Mode.LIVE, name="contract", actor=actor
    )
    customers = [
        customer_create(
            organization=organization,
            actor=actor,
            data={"email": f"{slug}{n}@example.com", "first_name": f"Customer{n}", "last_name": slug.upper()},
        ).pk
        for n in range(3)
    ]
    webhook, _ = webhook_endpoint_create(
        organization=organization,
        actor=actor,
        data={"url": f"https://example.com/hooks/{slug}", "events": ["customer.created"], "description": slug},
    )
    return {"key": secret, "key_id": key.pk, "customers": customers, "webhook": webhook.pk}


print(json.dumps({"a": seed_organization("a"), "b": seed_organization("b")}))
