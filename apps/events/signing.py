"""Webhook secrets and the three signature headers of the API contract.

- `Stateset-Signature: t=<unix>,v1=<hex>` with HMAC-SHA256(secret, "<t>.<body>") (Stripe's scheme;
  the key is the whole `whsec_...` string, as Stripe receivers expect).
- `X-StateSet-Signature: <hex>` with HMAC-SHA256(secret, body) (same key).
- Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over
  "<id>.<timestamp>.<body>", keyed with the base64-decoded part after `whsec_` (that spec's rule,
  so its libraries verify out of the box).

During a secret rotation every header carries one signature per valid secret (current first):
`t=..,v1=<new>,v1=<old>`, `<new>,<old>` and `v1,<new> v1,<old>`.
"""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _standard_key(secret):
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _hex(key, message):
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_headers(*, body, message_id, timestamp, secrets_in_use):
    """The signature headers for one request. `body` is the exact bytes sent."""
    t = str(int(timestamp))
    stripe_style = [_hex(secret.encode(), t.encode() + b"." + body) for secret in secrets_in_use]
    body_only = [_hex(secret.encode(), body) for secret in secrets_in_use]
    standard_message = f"{message_id}.{t}.".encode() + body
    standard = [
        "v1," + base64.b64encode(hmac.new(_standard_key(s), standard_message, hashlib.sha256).digest()).decode()
        for s in secrets_in_use
    ]
    return {
        "Stateset-Signature": ",".join([f"t={t}", *(f"v1={sig}" for sig in stripe_style)]),
        "X-StateSet-Signature": ",".join(body_only),
        "webhook-id": message_id,
        "webhook-timestamp": t,
        "webhook-signature": " ".join(standard),
    }
