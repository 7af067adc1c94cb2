"""On Redis the windows are counted in one round trip; the counters must be django-ratelimit's
own (same keys, same windows, same expiry), so both ways of counting see each other. The
in-flight slots of an organization are shared by every server process: a live server holds real
requests open, and a set filled by another (perhaps crashed) process counts too."""

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from django.core.cache import cache
from django.test import RequestFactory
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

from apps.accounts.models import Organization
from apps.core import ratelimit
from apps.core.errors import RateLimited
from apps.crm.api.views import CustomerViewSet

pytestmark = pytest.mark.redis


def _django_ratelimit_usage(request, key, limit, period):
    return get_usage(
        request,
        group=f"api:{period}",
        key=lambda group, request: key,
        rate=f"{limit}/{period}",
        method=ALL,
        increment=True,
    )


def _usages(request, key, per_minute, per_day):
    usages, _taken = ratelimit._count(request, [(key, per_minute, "m"), (key, per_day, "d")], None)
    return usages


def _redis():
    return cache._cache.get_client(write=True)


def _inflight_key(organization):
    return ratelimit._inflight_key(f"org:{organization.pk}")


def _fill_inflight(organization, count, *, age_seconds=0):
    """Slots held by requests another server process started `age_seconds` ago."""
    seconds, microseconds = _redis().time()
    started = seconds * 1000 + microseconds // 1000 - age_seconds * 1000
    _redis().zadd(_inflight_key(organization), {f"elsewhere-{i}": started for i in range(count)})


def _inflight(organization):
    return _redis().zcard(_inflight_key(organization))


def test_one_round_trip_counts_on_django_ratelimits_keys():
    request = RequestFactory().get("/v1/customers")
    key = "cred:test-ratelimit-redis"
    first = _django_ratelimit_usage(request, key, 5, "m")
    assert first["count"] == 1
    minute, day = _usages(request, key, 5, 100)
    assert (minute["count"], day["count"]) == (2, 1)
    assert minute["time_left"] == first["time_left"]
    assert not minute["should_limit"]
    for _ in range(3):
        minute, day = _usages(request, key, 5, 100)
    assert (minute["count"], minute["should_limit"]) == (5, False)
    minute, day = _usages(request, key, 5, 100)
    assert (minute["count"], minute["should_limit"], day["count"]) == (6, True, 5)
    after = _django_ratelimit_usage(request, key, 100, "d")
    assert after["count"] == 6


def test_burst_window_is_django_ratelimits_one_second_window(monkeypatch):
    # A frozen clock: both ways of counting must land in the same second.
    monkeypatch.setattr("django_ratelimit.core.time", SimpleNamespace(time=lambda: 1_800_000_000.25))
    request = RequestFactory().get("/v1/customers")
    key = "org:test-burst-window"
    usages, _taken = ratelimit._count(request, [("cred:x", 5, "m"), ("cred:x", 100, "d"), (key, 3, "s")], None)
    assert usages[2]["count"] == 1
    assert _django_ratelimit_usage(request, key, 3, "s")["count"] == 2


def test_windows_expire_like_django_ratelimits():
    request = RequestFactory().get("/v1/customers")
    key = "cred:test-ratelimit-expiry"
    ratelimit._count(request, [(key, 5, "m"), (key, 100, "d"), ("org:test-expiry", 10, "s")], None)
    client = _redis()
    ttls = sorted(client.ttl(k) for k in client.keys(f"{cache.key_prefix}*rl:*"))
    assert len(ttls) == 3 and all(0 < ttl <= 24 * 3600 + 5 for ttl in ttls)
    assert ttls[0] <= 6 and ttls[1] <= 65


class _Credential:
    def __init__(self, name):
        self.rate_limit_key = f"cred:{name}"


def test_a_slot_is_held_until_released_and_a_refused_request_holds_none(monkeypatch):
    monkeypatch.setitem(ratelimit.PLAN_LIMITS, "growth", ratelimit.PLAN_LIMITS["growth"]._replace(concurrent=2))
    organization = Organization(id="org_slots", plan="growth")
    first, second, third = (RequestFactory().get("/v1/customers") for _ in range(3))
    ratelimit.check(first, _Credential("a"), organization)
    ratelimit.check(second, _Credential("b"), organization)
    assert _inflight(organization) == 2
    with pytest.raises(RateLimited) as refused:
        ratelimit.check(third, _Credential("c"), organization)
    assert "Concurrent connections limit of 2" in refused.value.message
    assert _inflight(organization) == 2
    ratelimit.release(third)  # nothing to release: must not free someone else's slot
    assert _inflight(organization) == 2
    ratelimit.release(first)
    ratelimit.release(first)
    assert _inflight(organization) == 1
    ratelimit.check(third, _Credential("c"), organization)
    assert _inflight(organization) == 2


def test_over_a_window_no_slot_is_taken(monkeypatch):
    organization = Organization(id="org_windows", plan="growth", rate_limit_per_minute=1)
    ratelimit.check(RequestFactory().get("/"), _Credential("w"), organization)
    with pytest.raises(RateLimited) as refused:
        ratelimit.check(RequestFactory().get("/"), _Credential("w"), organization)
    assert "per minute" in refused.value.message
    assert _inflight(organization) == 1


def test_the_inflight_set_expires_when_idle():
    organization = Organization(id="org_idle", plan="free")
    ratelimit.check(RequestFactory().get("/"), _Credential("idle"), organization)
    assert 0 < _redis().pttl(_inflight_key(organization)) <= ratelimit.INFLIGHT_STALE_SECONDS * 1000


@pytest.fixture
def customers_url(live_server):
    return f"http://127.0.0.1:{live_server.thread.port}/v1/customers"


def _get(url, key):
    with httpx.Client(timeout=30.0) as http:
        return http.get(url, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.live
def test_requests_held_open_use_up_the_organizations_connections(
    monkeypatch, customers_url, secret_key, test_secret_key, organization
):
    monkeypatch.setitem(ratelimit.PLAN_LIMITS, "growth", ratelimit.PLAN_LIMITS["growth"]._replace(concurrent=3))
    held, arrived = threading.Event(), threading.Semaphore(0)
    real_list = CustomerViewSet.list

    def slow_list(self, request, *args, **kwargs):
        arrived.release()
        assert held.wait(timeout=20)
        return real_list(self, request, *args, **kwargs)

    monkeypatch.setattr(CustomerViewSet, "list", slow_list)
    with ThreadPoolExecutor(max_workers=3) as pool:
        # Two credentials, one from the sandbox: the organization's slots are shared.
        slow = [pool.submit(_get, customers_url, key) for key in (secret_key, secret_key, test_secret_key)]
        for _ in range(3):
            assert arrived.acquire(timeout=20)
        assert _inflight(organization) == 3

        refused = _get(customers_url, test_secret_key)
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMIT_EXCEEDED"
        assert "Concurrent connections limit of 3" in refused.json()["message"]
        assert refused.headers["X-RateLimit-Limit"] == "3"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.headers["Retry-After"] == refused.headers["X-RateLimit-Retry-After"] == "1"
        assert _inflight(organization) == 3

        held.set()
        assert [future.result().status_code for future in slow] == [200, 200, 200]
    assert _inflight(organization) == 0
    assert _get(customers_url, secret_key).status_code == 200
    assert _inflight(organization) == 0


@pytest.mark.live
def test_slots_held_elsewhere_count_until_they_go_stale(
    monkeypatch, customers_url, secret_key, organization, other_secret_key
):
    monkeypatch.setitem(ratelimit.PLAN_LIMITS, "growth", ratelimit.PLAN_LIMITS["growth"]._replace(concurrent=4))
    _fill_inflight(organization, 4)
    refused = _get(customers_url, secret_key)
    assert refused.status_code == 429
    assert "Concurrent connections limit of 4" in refused.json()["message"]
    assert _get(customers_url, other_secret_key).status_code == 200  # another organization's slots

    _redis().delete(_inflight_key(organization))
    _fill_inflight(organization, 4, age_seconds=ratelimit.INFLIGHT_STALE_SECONDS + 1)  # a crashed process's
    assert _get(customers_url, secret_key).status_code == 200
    assert _inflight(organization) == 0
