"""Rate limits by plan, per credential (else user, else IP), counted in the shared cache
(Redis in production) with django-ratelimit's fixed windows, so every server process shares them.
"""

import time

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

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


def check(request, actor, organization):
    """Count this request; returns the headers to send; raises RateLimited (429) when over."""
    if not settings.RATELIMIT_ENABLE:
        return {}
    key = actor.rate_limit_key if actor is not None else f"ip:{request.META.get('REMOTE_ADDR')}"
    per_minute, per_day = limits_for(organization)
    minute = _usage(request, key, per_minute, "m")
    day = _usage(request, key, per_day, "d")
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
