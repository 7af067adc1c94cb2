"""Session variables from rotating JWKS keys and from a Hasura-style authentication webhook.

Both are checked against real HTTP servers on 127.0.0.1 run by the tests themselves: a JWKS the
test can rotate, and an auth hook whose answers (status, headers, body, delay) the test sets and
whose received requests it reads.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from apps.crm.models import Customer

NAMESPACE = "https://hasura.io/jwt/claims"


class StubServer:
    """An HTTP server on a free local port answering every request with `status`, `headers` and
    `body` (after `delay` seconds), recording each request it gets."""

    def __init__(self):
        self.status, self.headers, self.body, self.delay = 200, {}, b"{}", 0.0
        self.received = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.received.append((self.command, self.path, dict(self.headers), body))
                if stub.delay:
                    time.sleep(stub.delay)
                payload = stub.body if isinstance(stub.body, bytes) else json.dumps(stub.body).encode()
                try:
                    self.send_response(stub.status)
                    for name, value in stub.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first: that is the timeout case under test

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_server():
    servers = []

    def start():
        servers.append(StubServer())
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def error(response):
    return response.status_code, response.json()["code"]


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# JWKS ------------------------------------------------------------------------------------


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key, kid):
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


def sign(private_key, kid, organization, *, algorithm="RS256", role="manager", exp_in=300, **registered):
    claims = {
        "exp": int(time.time()) + exp_in,
        NAMESPACE: {
            "x-hasura-user-id": "u-1",
            "x-hasura-org-id": organization.slug,
            "x-hasura-default-role": role,
            "x-hasura-allowed-roles": [role],
        },
        **registered,
    }
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def jwks(stub_server, settings):
    server = stub_server()
    server.body = {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}
    settings.STATESET_JWT_JWKS_URL = server.url + ".well-known/jwks.json"
    settings.STATESET_JWT_SECRET = ""
    settings.STATESET_JWT_PUBLIC_KEY = ""
    return server


def test_rs256_and_es256_tokens_reach_the_organization_they_name(
    client, organization, other_organization, api_client, jwks
):
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    response = client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization)))
    assert response.status_code == 200, response.content
    assert [c["email"] for c in response.json()["data"]] == ["ours@x.com"]
    response = client.get("/v1/customers", **bearer(sign(EC_KEY, "ec-1", organization, algorithm="ES256")))
    assert [c["email"] for c in response.json()["data"]] == ["ours@x.com"]
    # Cross-tenant: a token for the other organization sees none of ours.
    response = client.get("/v1/customers", **bearer(sign(EC_KEY, "ec-1", other_organization, algorithm="ES256")))
    assert response.status_code == 200 and response.json()["data"] == []
    assert len(jwks.received) == 1, "the key set is fetched once and then served from the cache"


def test_a_rotated_key_is_found_by_one_refresh(client, organization, jwks):
    assert client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization))).status_code == 200
    jwks.body = {"keys": [public_jwk(ROTATED_RSA_KEY, "rsa-2")]}
    response = client.get("/v1/customers", **bearer(sign(ROTATED_RSA_KEY, "rsa-2", organization)))
    assert response.status_code == 200, response.content
    assert len(jwks.received) == 2
    # The refreshed set is what counts now: the retired key no longer verifies anything.
    assert error(client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization)))) == (401, "INVALID_TOKEN")


def test_an_unknown_kid_after_the_refresh_is_401(client, organization, jwks):
    assert client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization))).status_code == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = client.get("/v1/customers", **bearer(sign(stranger, "rsa-unknown", organization)))
    assert error(response) == (401, "INVALID_TOKEN")
    assert len(jwks.received) == 2


def test_a_flood_of_unknown_kids_refreshes_at_most_once_per_interval(client, organization, jwks, settings):
    # Three seconds: ample for the flood below even on a loaded machine, short enough to wait out.
    settings.STATESET_JWT_JWKS_REFRESH_INTERVAL = 3
    assert client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization))).status_code == 200
    interval_started = time.monotonic()
    for number in range(10):
        response = client.get("/v1/customers", **bearer(sign(RSA_KEY, f"made-up-{number}", organization)))
        assert error(response) == (401, "INVALID_TOKEN")
    assert len(jwks.received) == 2
    time.sleep(max(0.0, interval_started + 3.2 - time.monotonic()))
    for number in range(3):
        client.get("/v1/customers", **bearer(sign(RSA_KEY, f"made-up-again-{number}", organization)))
    assert len(jwks.received) == 3


def test_issuer_and_audience_are_checked_when_configured(client, organization, jwks, settings):
    settings.STATESET_JWT_ISSUER = "https://clerk.example.test"
    settings.STATESET_JWT_AUDIENCE = "stateset, other-app"
    good = sign(RSA_KEY, "rsa-1", organization, iss="https://clerk.example.test", aud="stateset")
    assert client.get("/v1/customers", **bearer(good)).status_code == 200
    for registered in (
        {"iss": "https://evil.example.test", "aud": "stateset"},
        {"iss": "https://clerk.example.test", "aud": "someone-else"},
        {"iss": "https://clerk.example.test"},
        {"aud": "stateset"},
    ):
        token = sign(RSA_KEY, "rsa-1", organization, **registered)
        assert error(client.get("/v1/customers", **bearer(token))) == (401, "INVALID_TOKEN"), registered


def test_expired_forged_or_mismatched_tokens_are_401(client, organization, jwks):
    expired = sign(RSA_KEY, "rsa-1", organization, exp_in=-10)
    assert error(client.get("/v1/customers", **bearer(expired))) == (401, "INVALID_TOKEN")
    # Signed by another key under a kid the set holds.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sign(stranger, "rsa-1", organization)
    assert error(client.get("/v1/customers", **bearer(forged))) == (401, "INVALID_TOKEN")
    # An EC-signed token claiming the RSA key's kid: the algorithm must fit the key.
    mismatched = sign(EC_KEY, "rsa-1", organization, algorithm="ES256")
    assert error(client.get("/v1/customers", **bearer(mismatched))) == (401, "INVALID_TOKEN")


def test_an_unreachable_or_broken_jwks_refuses_the_token(client, organization, jwks, settings):
    jwks.status, jwks.body = 500, b"oops"
    assert error(client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization)))) == (401, "INVALID_TOKEN")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.STATESET_JWT_JWKS_URL = f"http://127.0.0.1:{closed_port}/jwks.json"
    assert error(client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization)))) == (401, "INVALID_TOKEN")


# Authentication webhook --------------------------------------------------------------------


@pytest.fixture
def hook(stub_server, settings, organization):
    server = stub_server()
    server.body = {"X-Hasura-User-Id": "u-42", "X-Hasura-Role": "user", "X-Hasura-Org-Id": organization.slug}
    settings.STATESET_AUTH_WEBHOOK_URL = server.url + "auth"
    settings.STATESET_AUTH_WEBHOOK_TIMEOUT = 0.5
    return server


def test_get_hook_forwards_credential_headers_and_acts_as_its_user(client, organization, api_client, hook):
    api_client.post("/v1/customers", {"email": "someone-else@x.com"})
    auth = {**bearer("opaque-session-token"), "HTTP_X_HASURA_ROLE": "user", "HTTP_COOKIE": "sessionid=private"}
    created = client.post("/v1/customers", {"email": "mine@x.com"}, content_type="application/json", **auth)
    assert created.status_code == 201, created.content
    listed = client.get("/v1/customers", **auth).json()["data"]
    assert [c["email"] for c in listed] == ["mine@x.com"]
    other_id = Customer.objects.get(email="someone-else@x.com").pk
    assert client.get(f"/v1/customers/{other_id}", **auth).status_code == 404

    method, _path, headers, _body = hook.received[0]
    assert method == "GET"
    assert headers["Authorization"] == "Bearer opaque-session-token"
    assert headers["X-Hasura-Role"] == "user"
    assert "Cookie" not in headers
    assert len(hook.received) == 3, "the api key's request never reached the hook; no caching without max-age"


def test_post_hook_gets_headers_and_request_in_its_body(client, organization, api_client, hook, settings):
    settings.STATESET_AUTH_WEBHOOK_MODE = "POST"
    hook.body = {"x-hasura-user-id": "u-7", "x-hasura-role": "manager", "x-hasura-org-id": str(organization.id)}
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    response = client.get(
        "/v1/customers",
        HTTP_AUTHORIZATION="Bearer opaque",
        HTTP_X_ACCOUNT_ID=organization.slug,
        HTTP_COOKIE="sessionid=private",
        HTTP_X_HASURA_ADMIN_SECRET="never-forwarded",
    )
    assert [c["email"] for c in response.json()["data"]] == ["ours@x.com"]
    method, _path, _headers, body = hook.received[0]
    assert method == "POST"
    sent = json.loads(body)
    assert sent["headers"] == {"Authorization": "Bearer opaque", "X-Account-Id": organization.slug}
    assert sent["request"] == {"method": "GET", "path": "/v1/customers"}


def test_hook_naming_no_organization_or_no_known_role_is_401(client, hook, other_organization):
    hook.body = {"X-Hasura-User-Id": "u-1", "X-Hasura-Role": "user", "X-Hasura-Org-Id": "no-such-org"}
    assert error(client.get("/v1/customers", **bearer("opaque"))) == (401, "INVALID_TOKEN")
    hook.body = {"X-Hasura-User-Id": "u-1", "X-Hasura-Role": "superuser", "X-Hasura-Org-Id": other_organization.slug}
    assert error(client.get("/v1/customers", **bearer("opaque"))) == (401, "INVALID_TOKEN")
    hook.body = {"X-Hasura-User-Id": "u-1", "X-Hasura-Org-Id": other_organization.slug}
    assert error(client.get("/v1/customers", **bearer("opaque"))) == (401, "INVALID_TOKEN")


@pytest.mark.parametrize(
    "status,headers,body,delay",
    [
        (401, {}, {"message": "no"}, 0),
        (500, {}, {"X-Hasura-Role": "admin"}, 0),
        (302, {"Location": "http://127.0.0.1:1/elsewhere"}, b"", 0),
        (200, {"Content-Type": "application/json"}, b"{not json", 0),
        (200, {}, ["X-Hasura-Role", "admin"], 0),
        (200, {}, {"X-Hasura-Role": "admin"}, 1.5),
    ],
    ids=["refused", "server-error", "redirect", "bad-json", "not-an-object", "timeout"],
)
def test_anything_but_a_200_with_session_variables_refuses(client, hook, organization, status, headers, body, delay):
    hook.status, hook.headers, hook.delay = status, headers, delay
    if isinstance(body, dict):
        body = {**body, "X-Hasura-Org-Id": organization.slug}
    hook.body = body
    assert error(client.get("/v1/customers", **bearer("opaque"))) == (401, "INVALID_TOKEN")


def test_hook_answers_are_cached_for_their_max_age_or_expires_only(client, hook):
    hook.headers = {"Cache-Control": "private, max-age=60"}
    for _ in range(3):
        assert client.get("/v1/customers", **bearer("token-a")).status_code == 200
    assert len(hook.received) == 1
    # Another credential is another cache entry.
    assert client.get("/v1/customers", **bearer("token-b")).status_code == 200
    assert len(hook.received) == 2

    hook.headers = {"Expires": "Thu, 01 Jan 2099 00:00:00 GMT"}
    client.get("/v1/customers", **bearer("token-c"))
    client.get("/v1/customers", **bearer("token-c"))
    assert len(hook.received) == 3

    hook.headers = {}
    client.get("/v1/customers", **bearer("token-d"))
    client.get("/v1/customers", **bearer("token-d"))
    assert len(hook.received) == 5


def test_tokens_we_can_judge_never_reach_the_hook(client, organization, api_client, hook, jwks, settings):
    # A JWT whose kid the JWKS holds is judged here: a bad one is refused, not handed to the hook.
    expired = sign(RSA_KEY, "rsa-1", organization, exp_in=-10)
    assert error(client.get("/v1/customers", **bearer(expired))) == (401, "INVALID_TOKEN")
    assert client.get("/v1/customers", **bearer(sign(RSA_KEY, "rsa-1", organization))).status_code == 200
    assert api_client.get("/v1/customers").status_code == 200
    assert hook.received == []
    # A JWT from an issuer whose keys we lack goes to the hook, which vouches for it.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert client.get("/v1/customers", **bearer(sign(stranger, "firebase-1", organization))).status_code == 200
    assert len(hook.received) == 1
    # Without a hook, an opaque credential is an invalid API key, as before.
    settings.STATESET_AUTH_WEBHOOK_URL = ""
    assert error(client.get("/v1/customers", **bearer("opaque"))) == (401, "INVALID_API_KEY")
