"""Rate limits by plan, counted in the shared cache (Redis in production) so every server
process shares them:

- per minute and per day, per credential (else user, else IP): django-ratelimit's fixed windows;
- per second (burst), per organization: the same fixed windows, one second long;
- concurrent connections, per organization: the requests in flight, each holding a slot from
  `check` until `release`.

A sandbox shares its live twin's limits and counters. On Redis everything is checked in one round
trip (a Lua script doing, per window, what django-ratelimit's `get_usage` does in three: SET NX
with the window's expiry, else INCR; then taking an in-flight slot), with django-ratelimit's own
cache keys and windows; releasing the slot is a second round trip. Any other cache goes through
`get_usage`, and the in-flight slots are counted per process.
"""

import hashlib
import logging
import secrets
import threading
import time
from typing import NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate, get_usage
from redis.exceptions import NoScriptError, RedisError

from .errors import RateLimited

logger = logging.getLogger(__name__)


class Limits(NamedTuple):
    per_minute: int
    per_day: int
    per_second: int
    concurrent: int | None  # None: unlimited


# API contract, "Rate limits", and seed 001, "API Limits & Quotas". Enterprise is "custom" there:
# these are its defaults. Any organization's four limits can be set on the organization itself.
PLAN_LIMITS = {
    "free": Limits(60, 1_000, 100, 10),
    "starter": Limits(100, 10_000, 200, 25),
    "growth": Limits(1_000, 100_000, 1_000, 100),
    "scale": Limits(5_000, 500_000, 5_000, 500),
    "enterprise": Limits(10_000, 1_000_000, 10_000, None),
}

# A slot held longer than this is taken to be abandoned (its process died mid-request) and freed.
INFLIGHT_STALE_SECONDS = 60


def limits_for(organization):
    if organization is None:
        return PLAN_LIMITS["free"]
    organization = organization.live or organization  # the sandbox shares its live twin's limits
    limits = PLAN_LIMITS.get(organization.plan, PLAN_LIMITS["free"])
    return limits._replace(
        per_minute=organization.rate_limit_per_minute or limits.per_minute,
        per_day=organization.rate_limit_per_day or limits.per_day,
        per_second=organization.rate_limit_per_second or limits.per_second,
        concurrent=organization.concurrent_requests_limit or limits.concurrent,
    )


def _cache():
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _usage(request, key, limit, period):
    return get_usage(
        request,
        group=f"api:{period}",
        key=lambda group, request: key,
        rate=f"{limit}/{period}",
        method=ALL,
        increment=True,
    )


# ARGV: the number of windows n, each window's expiry, each window's limit, then (with an
# in-flight set as the last key) the request's token, the slot limit and the staleness in ms.
# Per window: a new window starts at 1, else the count goes up by one (atomic, so a key can never
# lose its expiry between the two steps). A slot is taken only when no window is over, so a
# refused request never holds one. Returns the counts, then the slots held and 1 if taken.
_COUNT_SCRIPT = """
local n = tonumber(ARGV[1])
local result = {}
local over = false
for i = 1, n do
  if redis.call('SET', KEYS[i], 1, 'NX', 'EX', ARGV[1 + i]) then
    result[i] = 1
  else
    result[i] = redis.call('INCR', KEYS[i])
  end
  if result[i] > tonumber(ARGV[1 + n + i]) then
    over = true
  end
end
local inflight = KEYS[n + 1]
if inflight then
  local token, limit, stale = ARGV[2 + 2 * n], tonumber(ARGV[3 + 2 * n]), tonumber(ARGV[4 + 2 * n])
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now - stale)
  local held = redis.call('ZCARD', inflight)
  if over or held >= limit then
    result[n + 1], result[n + 2] = held, 0
  else
    redis.call('ZADD', inflight, now, token)
    redis.call('PEXPIRE', inflight, stale)
    result[n + 1], result[n + 2] = held + 1, 1
  end
end
return result
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


def _redis_count(cache, windows, slot):
    """`get_usage(..., increment=True)` for each (key, limit, period) in `windows`, then, with
    `slot` (in-flight key, limit, token), an in-flight slot, all in one round trip."""
    cache_keys, expiries, ends = [], [], []
    for key, limit, period in windows:
        rate = f"{limit}/{period}"
        seconds = _split_rate(rate)[1]
        end = _get_window(key, seconds)
        ends.append(end)
        cache_keys.append(cache.make_and_validate_key(_make_cache_key(f"api:{period}", end, rate, key, ALL)))
        expiries.append(seconds + EXPIRATION_FUDGE)
    args = [len(windows), *expiries, *(limit for _key, limit, _period in windows)]
    if slot is not None:
        inflight_key, limit, token = slot
        cache_keys.append(inflight_key)
        args += [token, limit, INFLIGHT_STALE_SECONDS * 1000]
    client = _client_for(cache)
    try:
        result = client.evalsha(_COUNT_SCRIPT_SHA, len(cache_keys), *cache_keys, *args)
    except NoScriptError:
        result = client.eval(_COUNT_SCRIPT, len(cache_keys), *cache_keys, *args)
    now = int(time.time())
    usages = [
        {"count": count, "limit": limit, "should_limit": count > limit, "time_left": end - now}
        for (_key, limit, _period), count, end in zip(windows, result, ends, strict=False)
    ]
    taken = slot is None or bool(result[len(windows) + 1])
    return usages, taken


# Without Redis the slots are this process's own: {organization key: {token: start}}, oldest first.
_local_slots = {}
_local_slots_lock = threading.Lock()


def _local_acquire(key, limit, token):
    with _local_slots_lock:
        tokens = _local_slots.setdefault(key, {})
        stale_before = time.monotonic() - INFLIGHT_STALE_SECONDS
        for held, started in list(tokens.items()):
            if started >= stale_before:
                break
            del tokens[held]
        if len(tokens) >= limit:
            return False
        tokens[token] = time.monotonic()
        return True


def _local_release(key, token):
    with _local_slots_lock:
        tokens = _local_slots.get(key)
        if tokens is not None:
            tokens.pop(token, None)
            if not tokens:
                del _local_slots[key]


def _count(request, windows, slot):
    """Counts this request in every window; takes the slot unless a window is over. Returns the
    usages (django-ratelimit's dicts) and whether the slot was taken (True when there is none)."""
    cache = _cache()
    if isinstance(cache, RedisCache):
        return _redis_count(cache, windows, slot)
    usages = [_usage(request, key, limit, period) for key, limit, period in windows]
    if slot is None or any(usage["should_limit"] for usage in usages):
        return usages, slot is None
    return usages, _local_acquire(*slot)


def _inflight_key(organization_key):
    cache = _cache()
    if isinstance(cache, RedisCache):
        return cache.make_and_validate_key(f"rl:inflight:{organization_key}")
    return organization_key


def check(request, actor, organization):
    """Count this request; returns the headers to send; raises RateLimited (429) when over.
    Within an organization limited in concurrency the request holds a slot until `release`."""
    if not settings.RATELIMIT_ENABLE:
        return {}
    key = actor.rate_limit_key if actor is not None else f"ip:{request.META.get('REMOTE_ADDR')}"
    limits = limits_for(organization)
    windows = [(key, limits.per_minute, "m"), (key, limits.per_day, "d")]
    slot = None
    if organization is not None:
        organization_key = f"org:{(organization.live or organization).pk}"
        windows.append((organization_key, limits.per_second, "s"))
        if limits.concurrent is not None:
            slot = (_inflight_key(organization_key), limits.concurrent, secrets.token_hex(8))
    usages, taken = _count(request, windows, slot)
    minute, day = usages[0], usages[1]
    burst = usages[2] if organization is not None else None
    now = int(time.time())
    binding = day if (day["should_limit"] and not minute["should_limit"]) else minute
    headers = {
        "X-RateLimit-Limit": str(binding["limit"]),
        "X-RateLimit-Remaining": str(max(0, min(limits.per_minute - minute["count"], limits.per_day - day["count"]))),
        "X-RateLimit-Reset": str(now + int(binding["time_left"])),
    }
    if minute["should_limit"] or day["should_limit"]:
        period = "minute" if binding is minute else "day"
        message = f"Rate limit of {binding['limit']} requests per {period} exceeded."
        raise _refusal(headers, message, max(1, int(binding["time_left"])))
    if burst is not None and burst["should_limit"]:
        limit, message = limits.per_second, f"Burst limit of {limits.per_second} requests per second exceeded."
    elif not taken:
        limit = limits.concurrent
        message = f"Concurrent connections limit of {limit} requests in flight exceeded."
    else:
        if slot is not None:
            request._rate_limit_slot = slot[0], slot[2]
        return headers
    # A second: the burst window's length, and about a request's (when a slot frees is unknown).
    headers.update({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(now + 1)})
    raise _refusal(headers, message, 1)


def _refusal(headers, message, retry_after):
    headers["Retry-After"] = headers["X-RateLimit-Retry-After"] = str(retry_after)
    return RateLimited(message, headers=headers)


def release(request):
    """Frees the in-flight slot `check` took for this request, if any (call it once the response
    is done, also after an error)."""
    slot = getattr(request, "_rate_limit_slot", None)
    if slot is None:
        return
    request._rate_limit_slot = None
    key, token = slot
    cache = _cache()
    if not isinstance(cache, RedisCache):
        _local_release(key, token)
        return
    try:
        _client_for(cache).zrem(key, token)
    except RedisError:
        # The finished request must not fail over this: the slot frees itself once stale.
        logger.warning("Could not release in-flight slot %s of %s", token, key, exc_info=True)
