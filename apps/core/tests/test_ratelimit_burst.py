"""The organization-wide limits (seed 001, "API Limits & Quotas"): requests per second (burst)
and requests in flight (concurrent connections), beside the per-credential minute and day.

Over HTTP with whichever cache is configured; the in-flight tests here count the per-process
slots used without Redis (on Redis, see test_ratelimit_redis.py)."""

import time
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django_ratelimit.core import _get_window

from apps.accounts.models import APIKey, Organization, hash_secret
from apps.core import ratelimit
from apps.crm.api.views import CustomerViewSet

without_redis = pytest.mark.skipif(isinstance(caches["default"], RedisCache), reason="counts this process's own slots")


@pytest.fixture
def clock(monkeypatch):
    """A clock that stands still unless moved: requests land in the same second."""
    now = SimpleNamespace(value=1_800_000_000.25)
    frozen = SimpleNamespace(time=lambda: now.value, monotonic=time.monotonic)
    monkeypatch.setattr("django_ratelimit.core.time", frozen)
    monkeypatch.setattr(ratelimit, "time", frozen)
    return now


def growth_limits(monkeypatch, **changes):
    monkeypatch.setitem(ratelimit.PLAN_LIMITS, "growth", ratelimit.PLAN_LIMITS["growth"]._replace(**changes))


def assert_rate_limited(response, message, limit):
    assert response.status_code == 429, response.content
    body = response.json()
    assert (body["type"], body["code"]) == ("rate_limit_error", "RATE_LIMIT_EXCEEDED")
    assert message in body["message"]
    assert response["X-RateLimit-Limit"] == str(limit)
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["Retry-After"] == response["X-RateLimit-Retry-After"]
    return body


def test_the_burst_limit_is_per_second_and_shared_by_the_organizations_credentials(
    monkeypatch, clock, api_client, test_secret_key, other_client
):
    growth_limits(monkeypatch, per_second=3)
    # The credential's minute window starts at an offset of its own (django-ratelimit hashes the
    # key): start well inside it, so moving one second on stays in the same minute.
    key_id = APIKey.objects.get(secret_hash=hash_secret(api_client.key)).pk
    while _get_window(f"cred:{key_id}", 60) - int(clock.value) < 3:
        clock.value += 3
    sandbox_client = api_client.as_key(test_secret_key)
    assert [c.get("/v1/customers").status_code for c in (api_client, api_client, sandbox_client)] == [200] * 3

    refused = api_client.get("/v1/customers")
    assert_rate_limited(refused, "Burst limit of 3 requests per second exceeded.", 3)
    assert refused["Retry-After"] == "1"
    assert refused["X-RateLimit-Reset"] == str(int(clock.value) + 1)
    assert_rate_limited(sandbox_client.get("/v1/customers"), "Burst limit of 3", 3)
    assert other_client.get("/v1/customers").status_code == 200  # another organization's second

    clock.value += 1
    passed = api_client.get("/v1/customers")
    assert passed.status_code == 200
    # This credential: two passed, one refused (it still counts, as it always has), this one.
    assert passed["X-RateLimit-Limit"] == "1000" and passed["X-RateLimit-Remaining"] == "996"


def test_the_minute_and_day_limits_are_named_too(monkeypatch, clock, api_client, organization):
    Organization.objects.filter(pk=organization.pk).update(rate_limit_per_minute=2, rate_limit_per_day=3)
    assert [api_client.get("/v1/customers").status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(api_client.get("/v1/customers"), "Rate limit of 2 requests per minute exceeded.", 2)
    clock.value += 60
    assert_rate_limited(api_client.get("/v1/customers"), "Rate limit of 3 requests per day exceeded.", 3)


def test_plan_defaults_follow_the_quotas_table():
    assert ratelimit.limits_for(Organization(plan="free"))[2:] == (100, 10)
    assert ratelimit.limits_for(Organization(plan="starter"))[2:] == (200, 25)
    assert ratelimit.limits_for(Organization(plan="growth"))[2:] == (1_000, 100)
    assert ratelimit.limits_for(Organization(plan="scale"))[2:] == (5_000, 500)
    assert ratelimit.limits_for(Organization(plan="enterprise")).concurrent is None


def held_slots(organization):
    return len(ratelimit._local_slots.get(f"org:{organization.pk}", {}))


def hold_slots(organization, count, *, started):
    slots = ratelimit._local_slots.setdefault(f"org:{organization.pk}", {})
    slots.update({f"elsewhere-{i}": started for i in range(count)})


@pytest.fixture
def no_slots_left_over():
    yield
    ratelimit._local_slots.clear()


@without_redis
def test_requests_in_flight_are_limited_per_organization(
    monkeypatch, api_client, test_secret_key, organization, no_slots_left_over
):
    growth_limits(monkeypatch, concurrent=2)
    hold_slots(organization, 2, started=time.monotonic())
    refused = api_client.as_key(test_secret_key).get("/v1/customers")
    body = assert_rate_limited(refused, "Concurrent connections limit of 2 requests in flight exceeded.", 2)
    assert refused["Retry-After"] == "1", body
    assert held_slots(organization) == 2  # the refused request took none

    ratelimit._local_slots.clear()
    stale = time.monotonic() - ratelimit.INFLIGHT_STALE_SECONDS - 1
    hold_slots(organization, 2, started=stale)  # left behind by requests that never finished
    assert api_client.get("/v1/customers").status_code == 200
    assert held_slots(organization) == 0


@without_redis
def test_a_request_holds_a_slot_until_its_response_even_when_it_fails(
    monkeypatch, api_client, organization, no_slots_left_over
):
    during = []
    real_list = CustomerViewSet.list

    def observed_list(self, request, *args, **kwargs):
        during.append(held_slots(organization))
        if request.query_params.get("fail"):
            raise RuntimeError("boom")
        return real_list(self, request, *args, **kwargs)

    monkeypatch.setattr(CustomerViewSet, "list", observed_list)
    api_client.client.raise_request_exception = False
    assert api_client.get("/v1/customers").status_code == 200
    assert api_client.get("/v1/customers", {"fail": "1"}).status_code == 500
    assert during == [1, 1]
    assert held_slots(organization) == 0
    assert api_client.get("/v1/customers/cus_missing").status_code == 404
    assert held_slots(organization) == 0


@without_redis
def test_refused_for_burst_holds_no_slot(monkeypatch, clock, api_client, organization, no_slots_left_over):
    growth_limits(monkeypatch, per_second=1)
    assert api_client.get("/v1/customers").status_code == 200
    hold_slots(organization, 1, started=time.monotonic())
    assert api_client.get("/v1/customers").status_code == 429
    assert held_slots(organization) == 1


def test_an_organizations_own_burst_and_concurrency_limits_replace_the_plans(organization):
    from apps.accounts.models import Organization
    from apps.core.ratelimit import PLAN_LIMITS, limits_for

    Organization.objects.filter(pk=organization.pk).update(rate_limit_per_second=7, concurrent_requests_limit=3)
    organization.refresh_from_db()
    limits = limits_for(organization.sandbox)
    assert (limits.per_second, limits.concurrent) == (7, 3)
    assert limits.per_minute == PLAN_LIMITS[organization.plan].per_minute
