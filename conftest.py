"""Fixtures shared by every test: organizations, keys, an API client."""

import os

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.accounts.models import Plan
from apps.accounts.services import api_key_create, organization_create

SERVICES_REQUIRED = os.environ.get("REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres") and not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            _unavailable(item, "needs PostgreSQL: set DATABASE_URL=postgres://...")
        if item.get_closest_marker("redis") and not settings.REDIS_URL:
            _unavailable(item, "needs Redis: set REDIS_URL=redis://...")


def _unavailable(item, reason):
    if SERVICES_REQUIRED:
        item.stash[_MISSING_SERVICE] = f"REQUIRE_SERVICES=1 but this test {reason}"
    else:
        item.add_marker(pytest.mark.skip(reason=reason))


_MISSING_SERVICE = pytest.StashKey[str]()


def pytest_runtest_setup(item):
    """Under REQUIRE_SERVICES=1 a test whose service is not configured fails, never skips."""
    missing = item.stash.get(_MISSING_SERVICE, None)
    if missing:
        pytest.fail(missing, pytrace=False)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and last-use markers must not leak between tests."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _celery_in_process(request):
    """Tasks run in-process in API and unit tests even when REDIS_URL names a broker; tests
    marked `worker` run a real Celery worker instead."""
    if request.node.get_closest_marker("worker"):
        yield
        return
    from stateset.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


class ApiClient:
    """A thin client over Django's test client that speaks JSON and carries a credential."""

    def __init__(self, client, key=None):
        self.client = client
        self.key = key
        self.headers = {}

    def _headers(self, extra):
        headers = dict(self.headers)
        if self.key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.key}"
        for name, value in (extra or {}).items():
            headers["HTTP_" + name.upper().replace("-", "_")] = value
        return headers

    def get(self, path, params=None, headers=None, **kwargs):
        return self.client.get(path, params or {}, **self._headers(headers), **kwargs)

    def post(self, path, data=None, headers=None):
        return self.client.post(
            path, data if data is not None else {}, content_type="application/json", **self._headers(headers)
        )

    def put(self, path, data=None, headers=None):
        return self.client.put(path, data or {}, content_type="application/json", **self._headers(headers))

    def patch(self, path, data=None, headers=None):
        return self.client.patch(path, data or {}, content_type="application/json", **self._headers(headers))

    def delete(self, path, headers=None):
        return self.client.delete(path, **self._headers(headers))

    def as_key(self, key):
        return ApiClient(self.client, key)


@pytest.fixture
def organization(db):
    return organization_create(name="Acme", slug="acme", plan=Plan.GROWTH)


@pytest.fixture
def other_organization(db):
    return organization_create(name="Globex", slug="globex", plan=Plan.GROWTH)


@pytest.fixture
def secret_key(organization):
    return api_key_create(organization=organization, kind="secret", mode="live")[1]


@pytest.fixture
def test_secret_key(organization):
    return api_key_create(organization=organization, kind="secret", mode="test")[1]


@pytest.fixture
def other_secret_key(other_organization):
    return api_key_create(organization=other_organization, kind="secret", mode="live")[1]


@pytest.fixture
def api_client(client, secret_key):
    return ApiClient(client, secret_key)


@pytest.fixture
def anonymous_client(client):
    return ApiClient(client)


@pytest.fixture
def other_client(client, other_secret_key):
    return ApiClient(client, other_secret_key)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def frozen_rate_clock(monkeypatch):
    """The rate limiter's clock stands still: a test that counts requests up to a per-minute limit
    cannot see the minute window roll over halfway (with the real clock, about one run in fifty)."""
    from types import SimpleNamespace

    from apps.core import ratelimit

    now = SimpleNamespace(value=1_800_000_000.5)
    frozen = SimpleNamespace(time=lambda: now.value, monotonic=__import__("time").monotonic)
    monkeypatch.setattr("django_ratelimit.core.time", frozen)
    monkeypatch.setattr(ratelimit, "time", frozen)
    return now
