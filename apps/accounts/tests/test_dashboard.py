"""Staff sign in with their email (django-allauth) and land on the dashboard."""

from apps.accounts.models import Role
from apps.accounts.services import staff_user_create


def test_email_login_reaches_the_dashboard(client, organization):
    staff_user_create(email="ops@acme.test", password="long password 1", organization=organization, role=Role.ADMIN)
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"password" in page.content.lower()
    response = client.post("/accounts/login/", {"login": "ops@acme.test", "password": "long password 1"})
    assert response.status_code == 302
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    assert b"Customers" in dashboard.content


def test_wrong_password_is_refused(client, organization):
    staff_user_create(email="ops@acme.test", password="long password 1", organization=organization)
    response = client.post("/accounts/login/", {"login": "ops@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302  # still sent to log in
