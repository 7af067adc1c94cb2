import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook

from apps.events.models import subscription_matches
from apps.events.sender import GONE, PERMANENT, RETRY, SUCCESS, classify
from apps.events.signing import new_secret, signature_headers
from apps.events.ssrf import UnsafeURL, check_url


def test_all_three_signatures_verify_with_every_secret_in_use():
    new, old = new_secret(), new_secret()
    body = b'{"id": "evt_1"}'
    now = time.time()
    headers = signature_headers(body=body, message_id="evt_1", timestamp=now, secrets_in_use=[new, old])
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
        mac = hmac.new(secret.encode(), f"{int(now)}.".encode() + body, hashlib.sha256).hexdigest()
        assert f"v1={mac}" in headers["Stateset-Signature"].split(",")
        assert hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() in headers["X-StateSet-Signature"].split(",")
    assert headers["Stateset-Signature"].startswith(f"t={int(now)},")
    assert headers["webhook-id"] == "evt_1" and headers["webhook-timestamp"] == str(int(now))


@pytest.mark.parametrize(
    "status, verdict",
    [(200, SUCCESS), (204, SUCCESS), (410, GONE), (400, PERMANENT), (401, PERMANENT), (404, PERMANENT)]
    + [(408, RETRY), (409, RETRY), (429, RETRY), (500, RETRY), (503, RETRY), (301, RETRY)],
)
def test_status_rules(status, verdict):
    assert classify(status) == verdict


@pytest.mark.parametrize(
    "patterns, event_type, matches",
    [
        (["*"], "order.created", True),
        (["order.*"], "order.created", True),
        (["order.*"], "order_line.created", False),
        (["customer.*"], "customer.subscription.created", True),
        (["customer.created"], "customer.updated", False),
        (["return.approved", "order.paid"], "order.paid", True),
    ],
)
def test_subscription_patterns(patterns, event_type, matches):
    assert subscription_matches(patterns, event_type) is matches


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/"])  # metadata: test_ssrf.py
def test_ssrf_guard(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeURL):
        check_url(url)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    check_url(url)
