"""Staff accounts come from invitations (or the command): public sign-up is closed by default."""

import re

import pytest
from django.core import mail

from apps.accounts.models import AuditLog, Membership, Role, User
from apps.accounts.services import staff_user_create, staff_user_invite
from apps.core.context import Actor
from apps.core.errors import PermissionDenied

SIGNUP = {"email": "stranger@example.test", "password1": "long password 1", "password2": "long password 1"}
INVITE_URL = "/admin/accounts/membership/invite/"


def test_signup_is_closed_by_default(client, db):
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    assert b"Sign Up Closed" in page.content and b'name="password1"' not in page.content
    client.post("/accounts/signup/", SIGNUP)
    assert not User.objects.filter(email="stranger@example.test").exists()


def test_signup_works_when_the_setting_opens_it(client, db, settings):
    settings.STATESET_OPEN_SIGNUP = True
    assert b'name="password1"' in client.get("/accounts/signup/").content
    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 302
    assert User.objects.filter(email="stranger@example.test").exists()


def login(client, email):
    staff = User.objects.get(email=email)
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")


@pytest.fixture
def org_admin(organization):
    return staff_user_create(email="boss@acme.test", password="long password 1", organization=organization)


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks):
    """Posts the invitation form; the email goes out once the (test) transaction "commits"."""

    def post(**data):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(INVITE_URL, data)

    return post


def test_an_invited_person_sets_a_password_and_reaches_the_dashboard(client, organization, org_admin, invite):
    login(client, org_admin.email)
    changelist = client.get("/admin/accounts/membership/")
    assert changelist.status_code == 200 and INVITE_URL.encode() in changelist.content
    assert client.get(INVITE_URL).status_code == 200

    response = invite(email="New.Hire@Acme.test", organization=organization.pk, role="manager")
    assert response.status_code == 302
    invited = User.objects.get(email="new.hire@acme.test")
    assert invited.is_staff and not invited.has_usable_password()
    assert Membership.objects.get(user=invited).role == Role.MANAGER
    audit = AuditLog.objects.get(action="membership.invited")
    assert audit.actor_id == str(org_admin.pk) and audit.after == {"email": "new.hire@acme.test", "role": "manager"}

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.hire@acme.test"] and "Acme" in message.subject
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+", message.body).group(0)

    client.logout()
    form_url = client.get(link)["Location"]  # allauth moves the key into the session
    assert b'name="password1"' in client.get(form_url).content
    done = client.post(form_url, {"password1": "a fresh passphrase 9", "password2": "a fresh passphrase 9"})
    assert done.status_code == 302

    response = client.post("/accounts/login/", {"login": "new.hire@acme.test", "password": "a fresh passphrase 9"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200

    client.logout()
    reused = client.get(link, follow=True)
    assert b'name="password1"' not in reused.content  # the link worked once


def test_inviting_an_existing_user_updates_the_membership(client, organization, other_organization, org_admin, invite):
    existing = staff_user_create(
        email="ops@acme.test", password="long password 1", organization=other_organization, role=Role.USER
    )
    login(client, org_admin.email)
    for role in ("user", "admin"):
        invite(email="ops@acme.test", organization=organization.pk, role=role)
    assert User.objects.filter(email="ops@acme.test").count() == 1
    assert Membership.objects.get(user=existing, organization=organization).role == Role.ADMIN
    assert Membership.objects.get(user=existing, organization=other_organization).role == Role.USER
    existing.refresh_from_db()
    assert existing.check_password("long password 1")
    # Someone with a password is told they were added; no password link.
    assert len(mail.outbox) == 2 and "/password/reset/key/" not in mail.outbox[-1].body


@pytest.mark.parametrize("role", [Role.USER, Role.MANAGER])
def test_a_member_who_is_not_admin_cannot_invite(client, organization, role, invite):
    staff_user_create(email="clerk@acme.test", password="long password 1", organization=organization, role=role)
    login(client, "clerk@acme.test")
    assert client.get(INVITE_URL).status_code == 403
    response = invite(email="x@acme.test", organization=organization.pk)
    assert response.status_code == 403
    assert client.get("/admin/accounts/membership/").status_code == 403
    assert not User.objects.filter(email="x@acme.test").exists() and not mail.outbox


def test_an_admin_cannot_invite_into_an_organization_they_do_not_administer(
    client, organization, other_organization, org_admin, invite
):
    Membership.objects.create(organization=other_organization, user=org_admin, role=Role.MANAGER)
    login(client, org_admin.email)
    response = invite(email="x@acme.test", organization=other_organization.pk, role="user")
    assert response.status_code == 200 and response.context["form"].errors["organization"]
    assert not User.objects.filter(email="x@acme.test").exists() and not mail.outbox

    admin_of_acme = Actor(organization=organization, role="admin", credential_type="session", user_id=str(org_admin.pk))
    with pytest.raises(PermissionDenied):
        staff_user_invite(organization=other_organization, email="x@acme.test", actor=admin_of_acme)


def test_the_membership_list_shows_only_administered_organizations(client, organization, other_organization, org_admin):
    staff_user_create(email="elsewhere@globex.test", password="long password 1", organization=other_organization)
    login(client, org_admin.email)
    page = client.get("/admin/accounts/membership/")
    assert b"boss@acme.test" in page.content and b"elsewhere@globex.test" not in page.content


def test_a_superuser_can_invite_into_any_organization(client, other_organization, invite):
    staff_user_create(email="root@stateset.test", password="long password 1", superuser=True)
    login(client, "root@stateset.test")
    response = invite(email="g@globex.test", organization=other_organization.pk, role="admin")
    assert response.status_code == 302
    assert Membership.objects.get(user__email="g@globex.test").organization == other_organization
    assert len(mail.outbox) == 1


def test_a_sandbox_admin_cannot_invite_into_the_live_organization(organization, org_admin):
    sandbox_admin = Actor(
        organization=organization.sandbox, role="admin", credential_type="api_key", credential_id="key_test_x"
    )
    with pytest.raises(PermissionDenied):
        staff_user_invite(organization=organization, email="x@acme.test", actor=sandbox_admin)
    with pytest.raises(PermissionDenied):
        staff_user_invite(organization=organization.sandbox, email="x@acme.test", actor=sandbox_admin)
    assert not User.objects.filter(email="x@acme.test").exists() and not mail.outbox
