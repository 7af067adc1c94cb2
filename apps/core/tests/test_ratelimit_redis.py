"""On Redis the two windows are counted in one round trip; the counters must be django-ratelimit's
own (same keys, same windows, same expiry), so both ways of counting see each other."""

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

from apps.core import ratelimit

pytestmark = pytest.mark.redis


def _django_ratelimit_usage(request, key, limit, period):
    return get_usage(
        request, group=f"api:{period}", key=lambda group, request: key, rate=f"{limit}/{period}", method=ALL, increment=True
    )


def test_one_round_trip_counts_on_django_ratelimits_keys():
    request = RequestFactory().get("/v1/customers")
    key = "cred:test-ratelimit-redis"
    first = _django_ratelimit_usage(request, key, 5, "m")
    assert first["count"] == 1
    minute, day = ratelimit._usages(request, key, 5, 100)
    assert (minute["count"], day["count"]) == (2, 1)
    assert minute["time_left"] == first["time_left"]
    assert not minute["should_limit"]
    for _ in range(3):
        minute, day = ratelimit._usages(request, key, 5, 100)
    assert (minute["count"], minute["should_limit"]) == (5, False)
    minute, day = ratelimit._usages(request, key, 5, 100)
    assert (minute["count"], minute["should_limit"], day["count"]) == (6, True, 5)
    after = _django_ratelimit_usage(request, key, 100, "d")
    assert after["count"] == 6


def test_windows_expire_like_django_ratelimits():
    request = RequestFactory().get("/v1/customers")
    key = "cred:test-ratelimit-expiry"
    ratelimit._usages(request, key, 5, 100)
    client = cache._cache.get_client(write=True)
    ttls = sorted(client.ttl(k) for k in client.keys(f"{cache.key_prefix}*rl:*"))
    assert ttls and all(0 < ttl <= 24 * 3600 + 5 for ttl in ttls)
    assert any(ttl <= 65 for ttl in ttls)
