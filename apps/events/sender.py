"""One signed HTTP POST of an event to an endpoint, classified by the contract's rules:
2xx success; 410 gone (the endpoint is disabled); other 4xx except 408, 409 and 429 fail for
good; everything else (5xx, 3xx, 408/409/429, timeouts, connection errors) is retried."""

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from .signing import signature_headers
from .ssrf import Unresolvable, UnsafeURL, resolve

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


class PinnedAdapter(HTTPAdapter):
    """Requests are sent to a URL whose host is the address the SSRF guard checked, with the
    real name in the Host header. For https, SNI and the certificate check use that name too;
    urllib3 keys its pools on it, so a connection verified for one name never serves another."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            name = urlsplit(f"//{request.headers['Host']}").hostname
            pool_kwargs.update(server_hostname=name, assert_hostname=name)
        return host_params, pool_kwargs


def _session():
    # One session per thread: keep-alive connections to the same receivers are reused.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False  # a proxy from the environment could reach what the SSRF check refused
        session.mount("http://", PinnedAdapter())
        session.mount("https://", PinnedAdapter())
    return session


def _literal(host):
    return f"[{host}]" if ":" in host else host


def _post_pinned(url, destination, headers, **kwargs):
    """POST to the checked addresses in the resolver's order of preference. The next address is
    tried only when no connection could be made to the previous one (nothing was sent), and not
    after a connect timeout (the attempt's lease would not cover several timeouts).
    Returns the status code and the start of the response body."""
    parts = urlsplit(url)
    host_header = _literal(destination.host) + (f":{parts.port}" if parts.port else "")
    headers = {**headers, "Host": host_header}
    last = len(destination.addresses) - 1
    for index, address in enumerate(destination.addresses):
        pinned_url = urlunsplit(parts._replace(netloc=f"{_literal(address)}:{destination.port}"))
        try:
            # Redirects are not followed: their target never went through the SSRF check.
            with _session().post(pinned_url, headers=headers, allow_redirects=False, stream=True, **kwargs) as response:
                # iter_content turns urllib3's read errors into requests' own exceptions.
                return response.status_code, next(response.iter_content(EXCERPT_BYTES), b"")[:EXCERPT_BYTES]
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            if index == last or not isinstance(reason, NewConnectionError):
                raise


def send(*, url, body, message_id, secrets_in_use):
    try:
        destination = resolve(url)
    except Unresolvable as exc:
        # A failed look-up may be passing (or the name not published yet): retried, like a
        # connection error, rather than failed for good.
        return Outcome(verdict=RETRY, error=f"Connection failed: {exc}")
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
        status_code, excerpt = _post_pinned(url, destination, headers, data=body, timeout=timeout)
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
