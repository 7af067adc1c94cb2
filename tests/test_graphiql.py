"""GraphiQL for staff (apps/graphql/graphiql.py): the page for a logged-in staff user's browser,
its requests running with the session, and the JSON API for everyone else."""

import re

import pytest
from django.test import Client

from apps.accounts.services import staff_user_create
from apps.core.context import Actor
from apps.crm.services import customer_create
from apps.graphql import graphiql

pytestmark = pytest.mark.django_db

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what a browser sends


@pytest.fixture
def staff(organization):
    customer_create(organization=organization, actor=Actor.system(organization), data={"email": "ada@acme.test"})
    return staff_user_create(email="staff@acme.test", password="a-long-password-1", organization=organization, role="manager")


@pytest.mark.parametrize("path", ["/graphql", "/v1/graphql"])
def test_a_staff_browser_gets_graphiql_and_queries_with_its_session(organization, staff, path):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    page = browser.get(path, HTTP_ACCEPT=HTML)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    # Every asset is pinned to a version and checked by the browser against its hash.
    tags = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https://[^"]+)"[^>]*integrity="(sha384-[^"]+)"', html)
    assert sorted(tags) == sorted((asset.url, asset.integrity) for asset in (*graphiql.SCRIPTS, *graphiql.STYLESHEETS))
    assert all(re.search(r"@\d+\.\d+\.\d+/", url) for url, _integrity in tags)
    assert html.count('crossorigin="anonymous"') == len(tags)
    config = re.search(r'<script id="graphiql-config" type="application/json">(.*?)</script>', html).group(1)
    token = re.search(r'"csrfToken": "([^"]+)"', config).group(1)
    assert f'"url": "{path}"' in config

    # What the page's fetcher sends: the session cookie and the CSRF token.
    answer = browser.post(
        path, {"query": "{ customers { email } }"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert answer.json() == {"data": {"customers": [{"email": "ada@acme.test"}]}}
    # Without the token the session is not enough for a POST.
    refused = browser.post(path, {"query": "{ customers { email } }"}, content_type="application/json")
    assert refused.status_code == 403


def test_anyone_else_gets_the_api(client, organization, staff, secret_key):
    # No credential: to the login page, and back here afterwards.
    page = client.get("/graphql", HTTP_ACCEPT=HTML)
    assert page.status_code == 302 and page["Location"] == "/accounts/login/?next=/graphql"
    # A credential from a browser, or a client wanting JSON: the API as it is.
    keyed = client.get("/graphql", HTTP_ACCEPT=HTML, HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert keyed["Content-Type"] == "application/json"
    assert keyed.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    query = client.get("/graphql", {"query": "{ customers { email } }"}, HTTP_ACCEPT=HTML, HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert query.json() == {"data": {"customers": [{"email": "ada@acme.test"}]}}
    client.force_login(staff)
    assert client.get("/graphql", HTTP_ACCEPT="application/json")["Content-Type"] == "application/json"
    # A logged-in user who is not staff.
    staff.is_staff = False
    staff.save(update_fields=["is_staff"])
    not_staff = client.get("/graphql", HTTP_ACCEPT=HTML)
    assert not_staff["Content-Type"] == "application/json"
