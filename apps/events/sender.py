"""One signed HTTP POST of an event to an endpoint, classified by the contract's rules:
2xx success; 410 gone (the endpoint is disabled); other 4xx except 408, 409 and 429 fail for
good; everything else (5xx, 3xx, 408/409/429, timeouts, connection errors) is retried."""

import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings

from .signing import signature_headers
from .ssrf import UnsafeURL, check_url

SUCCESS, RETRY, PERMANENT, GONE, SKIPPED = "success", "retry", "permanent", "gone", "skipped"
RETRYABLE_4XX = frozenset({408, 409, 429})
EXCERPT_BYTES = 1024
USER_AGENT = "StateSet-Webhooks/1.0 (+https://stateset.com/docs/webhooks)"

_local = threading.local()


@dataclass
class Outcome:
    verdict: str
    status_code: int | None = None
    error: str = ""
    latency_ms: int = 0
    response_excerpt: str = ""

    @classmethod
    def skipped(cls, reason):
        return cls(verdict=SKIPPED, error=reason)


def classify(status_code):
    if 200 <= status_code < 300:
        return SUCCESS
    if status_code == 410:
        return GONE
    if 400 <= status_code < 500 and status_code not in RETRYABLE_4XX:
        return PERMANENT
    return RETRY


def _session():
    # One session per thread: keep-alive connections to the same receivers are reused.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # a proxy from the environment could reach what the SSRF check refused
    return session


def send(*, url, body, message_id, secrets_in_use):
    try:
        check_url(url)
    except UnsafeURL as exc:
        return Outcome(verdict=PERMANENT, error=f"Refused: {exc}")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(body=body, message_id=message_id, timestamp=time.time(), secrets_in_use=secrets_in_use),
    }
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    try:
        # Redirects are not followed: their target never went through the SSRF check.
        with _session().post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            # iter_content turns urllib3's read errors into requests' own exceptions.
            excerpt = next(response.iter_content(EXCERPT_BYTES), b"")[:EXCERPT_BYTES]
            status_code = response.status_code
    except requests.Timeout:
        return Outcome(verdict=RETRY, error=f"Timed out after {timeout:g} s.", latency_ms=_elapsed_ms(started))
    except requests.RequestException as exc:
        return Outcome(verdict=RETRY, error=f"Connection failed: {_short(exc)}", latency_ms=_elapsed_ms(started))
    verdict = classify(status_code)
    return Outcome(
        verdict=verdict,
        status_code=status_code,
        error="" if verdict == SUCCESS else f"HTTP {status_code}",
        latency_ms=_elapsed_ms(started),
        response_excerpt=excerpt.decode("utf-8", errors="replace"),
    )


def _elapsed_ms(started):
    return int((time.monotonic() - started) * 1000)


def _short(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:297] + "..."
