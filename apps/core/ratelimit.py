"""Rate limits by plan, per credential (else user, else IP), counted in the shared cache
(Redis in production) with django-ratelimit's fixed windows, so every server process shares them.

On Redis both windows are counted in one round trip (a Lua script doing, per window, what
django-ratelimit's `get_usage` does in three: SET NX with the window's expiry, else INCR), with
django-ratelimit's own cache keys and windows. Any other cache goes through `get_usage`.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate, get_usage
from redis.exceptions import NoScriptError

from .errors import RateLimited

# Per minute, per day (API contract, "Rate limits").
PLAN_LIMITS = {
    "free": (60, 1_000),
    "starter": (100, 10_000),
    "growth": (1_000, 100_000),
    "scale": (5_000, 500_000),
    "enterprise": (10_000, 1_000_000),
}


def limits_for(organization):
    if organization is None:
        return PLAN_LIMITS["free"]
    organization = organization.live or organization  # the sandbox shares its live twin's limits
    per_minute, per_day = PLAN_LIMITS.get(organization.plan, PLAN_LIMITS["free"])
    return (
        organization.rate_limit_per_minute or per_minute,
        organization.rate_limit_per_day or per_day,
    )


def _usage(request, key, limit, period):
    return get_usage(
        request,
        group=f"api:{period}",
        key=lambda group, request: key,
        rate=f"{limit}/{period}",
        method=ALL,
        increment=True,
    )


# Per key: a new window starts at 1, else the count goes up by one (atomic, so a key can never
# lose its expiry between the two steps).
_COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, 1, 'NX', 'EX', ARGV[i]) then
    counts[i] = 1
  else
    counts[i] = redis.call('INCR', key)
  end
end
return counts
"""
_COUNT_SCRIPT_SHA = hashlib.sha1(_COUNT_SCRIPT.encode()).hexdigest()


_clients = {}


def _client_for(cache):
    """One redis-py client per connection pool: Django builds a new client (and copies its
    table of response callbacks) for every cache call."""
    pool = cache._cache._get_connection_pool(True)
    client = _clients.get(id(pool))
    if client is None or client.connection_pool is not pool:
        client = _clients[id(pool)] = cache._cache._client(connection_pool=pool)
    return client


def _redis_usages(cache, key, windows):
    """`get_usage(..., increment=True)` for each (limit, period) in `windows`, in one round trip."""
    cache_keys, expiries, ends = [], [], []
    for limit, period in windows:
        rate = f"{limit}/{period}"
        seconds = _split_rate(rate)[1]
        end = _get_window(key, seconds)
        ends.append(end)
        cache_keys.append(cache.make_and_validate_key(_make_cache_key(f"api:{period}", end, rate, key, ALL)))
        expiries.append(seconds + EXPIRATION_FUDGE)
    client = _client_for(cache)
    try:
        counts = client.evalsha(_COUNT_SCRIPT_SHA, len(cache_keys), *cache_keys, *expiries)
    except NoScriptError:
        counts = client.eval(_COUNT_SCRIPT, len(cache_keys), *cache_keys, *expiries)
    now = int(time.time())
    return [
        {"count": count, "limit": limit, "should_limit": count > limit, "time_left": end - now}
        for (limit, _period), count, end in zip(windows, counts, ends, strict=True)
    ]


def _usages(request, key, per_minute, per_day):
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if isinstance(cache, RedisCache):
        return _redis_usages(cache, key, [(per_minute, "m"), (per_day, "d")])
    return _usage(request, key, per_minute, "m"), _usage(request, key, per_day, "d")


def check(request, actor, organization):
    """Count this request; returns the headers to send; raises RateLimited (429) when over."""
    if not settings.RATELIMIT_ENABLE:
        return {}
    key = actor.rate_limit_key if actor is not None else f"ip:{request.META.get('REMOTE_ADDR')}"
    per_minute, per_day = limits_for(organization)
    minute, day = _usages(request, key, per_minute, per_day)
    now = int(time.time())
    binding = day if (day["should_limit"] and not minute["should_limit"]) else minute
    remaining = max(0, min(per_minute - minute["count"], per_day - day["count"]))
    headers = {
        "X-RateLimit-Limit": str(binding["limit"]),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(now + int(binding["time_left"])),
    }
    if minute["should_limit"] or day["should_limit"]:
        retry_after = str(max(1, int(binding["time_left"])))
        headers["Retry-After"] = retry_after
        headers["X-RateLimit-Retry-After"] = retry_after
        raise RateLimited(
            f"Rate limit of {binding['limit']} requests per {'minute' if binding is minute else 'day'} exceeded.",
            headers=headers,
        )
    return headers
