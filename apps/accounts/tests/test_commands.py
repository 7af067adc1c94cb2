"""Management commands as an operator runs them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import APIKey, Membership, Organization, User
from apps.crm.models import Customer


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_organization_makes_a_sandbox_twin(db):
    output = run("create_organization", "--name", "Acme Ltd", "--slug", "acme", "--plan", "starter")
    live = Organization.objects.get(slug="acme")
    assert live.livemode and live.plan == "starter"
    assert live.sandbox.slug == "acme-test" and not live.sandbox.livemode and live.sandbox.plan == "starter"
    assert "acme" in output
    with pytest.raises(CommandError):
        run("create_organization", "--name", "Again", "--slug", "acme")


def test_create_api_key_prints_the_key_alone_on_the_last_line(client, db):
    run("create_organization", "--name", "Acme", "--slug", "acme")
    output = run(
        "create_api_key",
        "--organization",
        "acme",
        "--kind",
        "restricted",
        "--mode",
        "test",
        "--scopes",
        "customers:read,orders:write",
        "--expires-in-days",
        "30",
    )
    secret = output.strip().splitlines()[-1]
    assert secret.startswith("rk_test_")
    key = APIKey.objects.get()
    assert key.scopes == ["customers:read", "orders:write"] and key.expires_at is not None
    assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    with pytest.raises(CommandError):
        run("create_api_key", "--organization", "nope", "--kind", "secret", "--mode", "live")


def test_create_staff_user_and_seed_demo(db):
    run("create_organization", "--name", "Acme", "--slug", "acme")
    run(
        "create_staff_user",
        "--email",
        "Boss@Acme.test",
        "--password",
        "long password 1",
        "--organization",
        "acme",
        "--role",
        "manager",
    )
    user = User.objects.get(email="boss@acme.test")
    assert user.is_staff and Membership.objects.get(user=user).role == "manager"

    output = run("seed_demo")
    demo = Organization.objects.get(slug="demo")
    assert Customer.objects.for_org(demo).count() == 6
    assert Customer.objects.for_org(demo.sandbox).count() == 6
    secret = [line for line in output.splitlines() if "sk_test_" in line][0].split()[-1]
    assert APIKey.objects.filter(organization=demo, mode="test", last4=secret[-4:]).exists()
    assert "Database already has data" in run("seed_demo", "--if-empty")
