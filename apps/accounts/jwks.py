"""The signing keys an identity provider publishes as a JWKS (Clerk, Firebase, Auth0, ...).

The key set lives in the Django cache, so every server process shares one copy and one fetch;
its lifetime is the issuer's `Cache-Control: max-age` (else ten minutes). Issuers rotate keys by
publishing a new one and signing with it, so a token naming a `kid` the cached set lacks triggers
a refresh, but at most one per `STATESET_JWT_JWKS_REFRESH_INTERVAL` seconds across all processes:
otherwise a stream of tokens with made-up kids would make us hammer the issuer for each of them.

A fetch that fails (timeout, connection error, non-200, malformed JSON) refuses the token at hand;
nothing here ever admits a token it could not check.
"""

import hashlib
import json
import re

import jwt
import requests
from django.conf import settings
from django.core.cache import cache

from apps.core.errors import AuthenticationFailed

# The token algorithms a JWKS key may verify, with the key type (and curve) each needs. A token's
# `alg` header must agree with its key's type: never let a token pick a weaker algorithm than the
# key was published for.
KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}
DEFAULT_TTL_SECONDS = 600
# A max-age below this would make a busy server refetch on nearly every request.
MIN_TTL_SECONDS = 30
MAX_TTL_SECONDS = 24 * 3600
# After a failed fetch, refuse for a moment without trying again: a down issuer should not cost
# every request a full timeout.
FAILURE_BACKOFF_SECONDS = 5
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)


class UnknownKey(Exception):
    """The key set has no key for this `kid` (even after a refresh): the token is not for us."""


def _cache_key(url, purpose):
    # Hashed: a URL may be long and hold characters memcached-style backends refuse.
    return f"jwks:{purpose}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def _ttl(response):
    cache_control = response.headers.get("Cache-Control", "")
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return MIN_TTL_SECONDS
    match = _MAX_AGE.search(cache_control)
    if not match:
        return DEFAULT_TTL_SECONDS
    return max(MIN_TTL_SECONDS, min(MAX_TTL_SECONDS, int(match.group(1))))


def _fetch(url):
    """The key set at `url` as {kid: jwk}, stored in the cache; raises AuthenticationFailed."""
    failed_marker = _cache_key(url, "failed")
    if cache.get(failed_marker):
        raise AuthenticationFailed("The token's signing keys are unavailable.", code="INVALID_TOKEN")
    try:
        response = requests.get(
            url,
            timeout=settings.STATESET_JWT_JWKS_TIMEOUT,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise ValueError(f"status {response.status_code}")
        keys = _signing_keys(response.json())
    except (requests.RequestException, ValueError):
        cache.set(failed_marker, 1, FAILURE_BACKOFF_SECONDS)
        raise AuthenticationFailed("The token's signing keys are unavailable.", code="INVALID_TOKEN") from None
    cache.set(_cache_key(url, "keys"), keys, _ttl(response))
    return keys


def _signing_keys(document):
    """{kid: jwk} of the document's signature keys; ValueError when it is not a key set."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys = {}
    for jwk in document["keys"]:
        # Encryption keys (`use: enc`) may share the set; they must never verify a signature.
        if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str) and jwk.get("use", "sig") == "sig":
            keys[jwk["kid"]] = jwk
    return keys


def _refresh_allowed(url):
    # cache.add is atomic in every backend: of all processes, one wins the interval.
    return cache.add(_cache_key(url, "refreshed"), 1, settings.STATESET_JWT_JWKS_REFRESH_INTERVAL)


# Per process: parsed keys by their JSON, since building an RSA key from a JWK costs more than
# verifying a signature with it.
_parsed = {}


def _verification_key(jwk, algorithm):
    key_type, curve = KEY_TYPES[algorithm]
    if jwk.get("kty") != key_type or (curve and jwk.get("crv") != curve) or jwk.get("alg", algorithm) != algorithm:
        raise AuthenticationFailed("The token's algorithm does not match its key.", code="INVALID_TOKEN")
    identity = json.dumps(jwk, sort_keys=True) + algorithm
    key = _parsed.get(identity)
    if key is None:
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            raise AuthenticationFailed("The issuer published an unusable key.", code="INVALID_TOKEN") from None
        if len(_parsed) > 1000:
            _parsed.clear()
        _parsed[identity] = key
    return key


def signing_key(url, kid, algorithm):
    """The key that verifies a token with this `kid` and `alg`, from the key set at `url`.

    Raises UnknownKey when the set has no such kid even after a refresh (or a refresh is not
    allowed yet), AuthenticationFailed when the set cannot be fetched or the key does not fit.
    """
    keys = cache.get(_cache_key(url, "keys"))
    if keys is None:
        keys = _fetch(url)
    elif kid not in keys and _refresh_allowed(url):
        keys = _fetch(url)
    if kid not in keys:
        raise UnknownKey(kid)
    return _verification_key(keys[kid], algorithm)
