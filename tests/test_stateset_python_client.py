"""The official `stateset-python` 1.2.0 client against a live server (real socket).

The client is async only, has no customers resource (we use its `GenericResource`), updates with
PUT, retries 408/409/425/429/5xx unless `max_attempts=0`, and picks its error class from the
top-level `type` of the error body (reference/stateset-surfaces.md, section 5). Every call below
goes through the client; the database is checked between calls (outside the event loop).

The SDK's import name `stateset` is taken by this project's Django package, so the installed
distribution is loaded under an alias (tests/stateset_python_sdk.py).
"""

import asyncio
import time
import uuid

import httpx
import pytest

from apps.accounts.models import Organization, Plan
from apps.accounts.services import organization_set_plan
from apps.core.models import IdempotencyRecord
from apps.crm.models import Customer, CustomerAddress

from .stateset_python_sdk import VERSION
from .stateset_python_sdk import sdk as stateset_sdk

Stateset = stateset_sdk.Stateset
RetryConfig = stateset_sdk.client.RetryConfig
GenericResource = stateset_sdk.resources.GenericResource
StatesetAuthenticationError = stateset_sdk.errors.StatesetAuthenticationError
StatesetError = stateset_sdk.errors.StatesetError
StatesetInvalidRequestError = stateset_sdk.errors.StatesetInvalidRequestError
StatesetNotFoundError = stateset_sdk.errors.StatesetNotFoundError
StatesetRateLimitError = stateset_sdk.errors.StatesetRateLimitError

pytestmark = pytest.mark.live


def test_the_official_client_is_the_pinned_release():
    assert VERSION == "1.2.0"
    assert stateset_sdk.__version__ == "1.2.0"
    assert Stateset.__module__ == "stateset_sdk.client"


@pytest.fixture
def runner():
    """One event loop for the whole test; ORM calls run between `runner.run(...)` calls."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture
def base_url(live_server):
    return f"http://127.0.0.1:{live_server.thread.port}/v1"


class Wire:
    """Records every response the client receives (status and headers), through an httpx hook."""

    def __init__(self):
        self.responses = []

    async def hook(self, response):
        self.responses.append(response)

    @property
    def last(self):
        return self.responses[-1]


@pytest.fixture
def make_client(runner, base_url):
    """`make_client(key) -> (Stateset, customers resource, Wire)`, closed after the test."""
    opened = []

    def make(key, *, retry_config=None):
        wire = Wire()
        http = httpx.AsyncClient(base_url=base_url, timeout=30.0, event_hooks={"response": [wire.hook]})
        client = Stateset(
            api_key=key,
            base_url=base_url,
            retry_config=retry_config or RetryConfig(max_attempts=0),
            client=http,
        )
        opened.append(http)
        return client, GenericResource(client, "customers"), wire

    yield make
    for http in opened:
        runner.run(http.aclose())


@pytest.fixture
def sdk(make_client, secret_key):
    return make_client(secret_key)


def new_customer_payload(**overrides):
    payload = {
        "email": "Ada.Lovelace@Example.com",
        "firstName": "Ada",  # the seeds' camelCase input
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "metadata": {"source": "sdk"},
        "tags": ["vip", "analytical"],
        "addresses": [
            {
                "address_line_1": "12 St James's Square",
                "city": "London",
                "postal_code": "SW1Y 4JH",
                "country_code": "gb",
                "is_default_shipping": True,
            }
        ],
    }
    payload.update(overrides)
    return payload


def test_default_constructor_with_v1_base_url_reaches_the_server(runner, base_url, secret_key, organization):
    """The plain documented construction (no custom httpx client) works end to end."""

    async def scenario():
        async with Stateset(api_key=secret_key, base_url=base_url, retry_config=RetryConfig(max_attempts=0)) as client:
            customers = GenericResource(client, "customers")
            created = await customers.create({"email": "plain@example.com"})
            listed = await customers.list(limit=10, offset=0)
            return created, listed

    created, listed = runner.run(scenario())
    assert created["object"] == "customer"
    assert [row["id"] for row in listed["data"]] == [created["id"]]
    assert Customer.objects.get(pk=created["id"]).organization_id == organization.pk


def test_crud_round_trip(runner, sdk, organization):
    _client, customers, wire = sdk

    # Create ---------------------------------------------------------------------------------
    created = runner.run(customers.create(new_customer_payload()))
    assert wire.last.status_code == 201
    assert wire.last.request.method == "POST"
    assert wire.last.request.url.path == "/v1/customers"
    assert created["object"] == "customer"
    assert created["id"].startswith("cus_")
    assert created["email"] == "ada.lovelace@example.com"
    assert created["first_name"] == "Ada"
    assert created["last_name"] == "Lovelace"
    assert created["status"] == "active"
    assert created["livemode"] is True
    assert created["metadata"] == {"source": "sdk"}
    assert created["tags"] == ["analytical", "vip"]
    assert len(created["addresses"]) == 1
    address = created["addresses"][0]
    assert address["id"].startswith("addr_")
    assert address["country_code"] == "GB"
    assert created["default_shipping_address"] == address["id"]
    assert created["default_billing_address"] is None

    row = Customer.objects.get(pk=created["id"])
    assert row.organization_id == organization.pk
    assert row.email == "ada.lovelace@example.com"
    assert row.first_name == "Ada"
    assert list(CustomerAddress.objects.filter(customer=row).values_list("id", flat=True)) == [address["id"]]

    second = runner.run(customers.create({"email": "charles@example.com", "first_name": "Charles"}))
    assert Customer.objects.filter(organization=organization).count() == 2

    # Get ------------------------------------------------------------------------------------
    fetched = runner.run(customers.get(created["id"]))
    assert wire.last.request.url.path == f"/v1/customers/{created['id']}"
    assert fetched == created

    # List (newest first; cursor paging through the client's params) -----------------------
    first_page = runner.run(customers.list(limit=1))
    assert first_page["object"] == "list"
    assert first_page["url"] == "/v1/customers"
    assert [c["id"] for c in first_page["data"]] == [second["id"]]
    assert first_page["has_more"] is True
    assert first_page["next_cursor"]
    second_page = runner.run(customers.list(limit=1, cursor=first_page["next_cursor"]))
    assert [c["id"] for c in second_page["data"]] == [created["id"]]
    assert second_page["data"][0] == fetched
    assert second_page["has_more"] is False
    assert second_page["next_cursor"] is None
    everything = runner.run(customers.list())
    assert [c["id"] for c in everything["data"]] == [second["id"], created["id"]]
    oldest_first = runner.run(customers.list(sort="created_at"))
    assert [c["id"] for c in oldest_first["data"]] == [created["id"], second["id"]]

    # Update (the client sends PUT; PUT is a partial update) ---------------------------------
    updated = runner.run(customers.update(created["id"], {"first_name": "Augusta", "status": "INACTIVE"}))
    assert wire.last.request.method == "PUT"
    assert wire.last.status_code == 200
    assert updated["id"] == created["id"]
    assert updated["first_name"] == "Augusta"
    assert updated["status"] == "inactive"
    assert updated["last_name"] == "Lovelace"  # untouched by a partial PUT
    assert updated["email"] == created["email"]
    assert updated["addresses"] == created["addresses"]
    row.refresh_from_db()
    assert (row.first_name, row.status, row.last_name) == ("Augusta", "inactive", "Lovelace")
    assert runner.run(customers.get(created["id"])) == updated

    # Search ---------------------------------------------------------------------------------
    found = runner.run(customers.search(query="lovelace"))
    assert wire.last.request.url.path == "/v1/customers/search"
    assert wire.last.request.url.params["query"] == "lovelace"
    assert found["object"] == "list"
    assert [c["id"] for c in found["data"]] == [created["id"]]
    assert [c["id"] for c in runner.run(customers.search(query="CHARLES"))["data"]] == [second["id"]]
    assert runner.run(customers.search(query="nobody-matches-this"))["data"] == []

    # Delete ---------------------------------------------------------------------------------
    assert runner.run(customers.delete(created["id"])) is None
    assert wire.last.status_code == 204
    assert not Customer.objects.filter(pk=created["id"]).exists()
    assert not CustomerAddress.objects.filter(pk=address["id"]).exists()
    assert Customer.objects.filter(pk=second["id"]).exists()
    with pytest.raises(StatesetNotFoundError):
        runner.run(customers.get(created["id"]))
    assert [c["id"] for c in runner.run(customers.list())["data"]] == [second["id"]]


def test_unknown_id_is_not_found(runner, sdk):
    _client, customers, wire = sdk
    with pytest.raises(StatesetNotFoundError) as caught:
        runner.run(customers.get("cus_doesnotexist"))
    assert caught.value.status_code == 404
    assert caught.value.code == "RESOURCE_NOT_FOUND"
    assert caught.value.raw_response["request_id"] == wire.last.headers["X-Request-ID"]
    for call in (
        customers.update("cus_doesnotexist", {"first_name": "X"}),
        customers.delete("cus_doesnotexist"),
    ):
        with pytest.raises(StatesetNotFoundError):
            runner.run(call)


def test_another_organizations_customer_is_not_found(runner, make_client, secret_key, other_secret_key, organization):
    _, ours, _ = make_client(secret_key)
    _, theirs, wire = make_client(other_secret_key)
    created = runner.run(ours.create(new_customer_payload()))
    before = Customer.objects.filter(pk=created["id"]).values().get()

    for call in (
        theirs.get(created["id"]),
        theirs.update(created["id"], {"first_name": "Mallory", "email": "mallory@example.com"}),
        theirs.delete(created["id"]),
    ):
        with pytest.raises(StatesetNotFoundError) as caught:
            runner.run(call)
        assert caught.value.status_code == 404  # never 403: the object does not exist for them
        assert caught.value.code == "RESOURCE_NOT_FOUND"

    assert runner.run(theirs.list())["data"] == []
    assert runner.run(theirs.search(query="lovelace"))["data"] == []
    assert Customer.objects.filter(pk=created["id"]).values().get() == before
    assert Customer.objects.count() == 1
    assert Customer.objects.get().organization_id == organization.pk
    # The same email is free in another organization (uniqueness is per organization).
    theirs_created = runner.run(theirs.create({"email": created["email"]}))
    assert wire.last.status_code == 201
    assert Customer.objects.get(pk=theirs_created["id"]).organization_id != organization.pk


def test_bad_email_is_an_invalid_request(runner, sdk):
    _client, customers, wire = sdk
    with pytest.raises(StatesetInvalidRequestError) as caught:
        runner.run(customers.create({"email": "not-an-email", "first_name": "Bad"}))
    assert caught.value.status_code == 422
    assert caught.value.code == "VALIDATION_ERROR"
    assert caught.value.raw_response["param"] == "email"
    assert caught.value.raw_response["type"] == "invalid_request_error"
    assert "email" in caught.value.detail
    assert len(wire.responses) == 1
    assert not Customer.objects.exists()


def test_duplicate_email_is_an_invalid_request_conflict(runner, sdk, organization):
    _client, customers, wire = sdk
    first = runner.run(customers.create({"email": "grace@example.com"}))
    sent_before = len(wire.responses)
    with pytest.raises(StatesetInvalidRequestError) as caught:
        runner.run(customers.create({"email": "GRACE@example.com", "first_name": "Again"}))
    assert caught.value.status_code == 409
    assert caught.value.code == "RESOURCE_ALREADY_EXISTS"
    assert caught.value.raw_response["param"] == "email"
    assert len(wire.responses) == sent_before + 1  # max_attempts=0: the 409 is not re-POSTed
    assert list(Customer.objects.filter(organization=organization).values_list("id", flat=True)) == [first["id"]]

    # Changing another customer's email onto a taken one is the same conflict.
    other = runner.run(customers.create({"email": "hopper@example.com"}))
    with pytest.raises(StatesetInvalidRequestError) as caught:
        runner.run(customers.update(other["id"], {"email": "grace@example.com"}))
    assert caught.value.status_code == 409
    assert caught.value.code == "RESOURCE_ALREADY_EXISTS"
    assert Customer.objects.get(pk=other["id"]).email == "hopper@example.com"


def test_duplicate_email_with_default_retries_still_ends_in_the_conflict(runner, make_client, secret_key):
    """The client re-POSTs a 409 by default; the server must answer every attempt the same way
    and create nothing. (A short backoff keeps the test fast.)"""
    _, customers, wire = make_client(secret_key, retry_config=RetryConfig(max_attempts=2, backoff_factor=0.01))
    runner.run(customers.create({"email": "dup@example.com"}))
    with pytest.raises(StatesetInvalidRequestError) as caught:
        runner.run(customers.create({"email": "dup@example.com"}))
    assert caught.value.code == "RESOURCE_ALREADY_EXISTS"
    assert [r.status_code for r in wire.responses] == [201, 409, 409, 409]
    assert Customer.objects.filter(email="dup@example.com").count() == 1


def test_bad_key_is_an_authentication_error(runner, make_client, organization):
    _, customers, wire = make_client("sk_live_thisisnotarealkey0000000000000000")
    with pytest.raises(StatesetAuthenticationError) as caught:
        runner.run(customers.list())
    assert caught.value.status_code == 401
    assert caught.value.code == "INVALID_API_KEY"
    assert caught.value.raw_response["type"] == "authentication_error"
    with pytest.raises(StatesetAuthenticationError):
        runner.run(customers.create({"email": "intruder@example.com"}))
    assert not Customer.objects.exists()
    assert wire.last.status_code == 401


def exceed_rate_limit(runner, customers, wire, limit):
    """`limit` requests pass, the next one in the same window is refused: (error, seconds it took)."""
    for _attempt in range(2):  # a second try only if a minute window rolled over mid-sequence
        wire.responses.clear()
        # The first request of the sequence says when its window ends: too close, and the count
        # would be split between two windows; start again in the next one.
        runner.run(customers.list())
        window_end = int(wire.last.headers["X-RateLimit-Reset"])
        if window_end - time.time() < 20:
            time.sleep(max(0.0, window_end - time.time()) + 1.0)
            continue
        for _ in range(limit - 1):
            runner.run(customers.list())
        started = time.monotonic()
        try:
            runner.run(customers.list())
        except StatesetRateLimitError as caught:
            return caught, time.monotonic() - started
        resets = {r.headers["X-RateLimit-Reset"] for r in wire.responses}
        assert len(resets) > 1, f"request {limit + 1} was not refused within one window"
    pytest.fail("no 429 in two windows")


def assert_refused_after(wire, exc, elapsed, limit):
    assert exc.status_code == 429
    assert exc.code == "RATE_LIMIT_EXCEEDED"
    assert exc.raw_response["type"] == "rate_limit_error"
    assert elapsed < 2.0, f"the client waited {elapsed:.1f}s on a 429 with max_attempts=0"
    assert [r.status_code for r in wire.responses] == [200] * limit + [429]
    refused = wire.last
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Retry-After"] == refused.headers["Retry-After"]
    assert refused.headers["X-RateLimit-Limit"] == str(limit)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert [r.headers["X-RateLimit-Limit"] for r in wire.responses] == [str(limit)] * (limit + 1)
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in wire.responses[:limit]] == list(range(limit - 1, -1, -1))


def test_free_plan_allows_60_requests_a_minute(runner, sdk, organization):
    organization_set_plan(organization=organization, plan=Plan.FREE)
    _client, customers, wire = sdk
    exc, elapsed = exceed_rate_limit(runner, customers, wire, 60)
    assert_refused_after(wire, exc, elapsed, 60)


def test_rate_limit_raises_rate_limit_error_quickly(runner, sdk, organization):
    """With the organization's limit at 2/min the third request in the window is a 429; with
    max_attempts=0 the client raises at once instead of sleeping for Retry-After."""
    limit = 2
    Organization.objects.filter(pk=organization.pk).update(rate_limit_per_minute=limit)
    _client, customers, wire = sdk
    exc, elapsed = exceed_rate_limit(runner, customers, wire, limit)
    assert_refused_after(wire, exc, elapsed, limit)

    # Writes are limited too; a refused write creates nothing and does not claim its
    # Idempotency-Key (the key stays usable once the window has passed).
    with pytest.raises(StatesetRateLimitError):
        runner.run(customers.create({"email": "late@example.com"}))
    with pytest.raises(StatesetRateLimitError):
        runner.run(
            _client.request("POST", "customers", json={"email": "late@example.com"}, headers={"Idempotency-Key": "k1"})
        )
    assert not Customer.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_raw_request_with_idempotency_key_replays(runner, sdk, organization):
    """`client.request(..., headers={"Idempotency-Key": ...})` twice: one row, the same answer."""
    client, customers, wire = sdk
    key = f"idem-{uuid.uuid4()}"
    body = {"email": "replay@example.com", "first_name": "Once"}

    first = runner.run(client.request("POST", "customers", json=body, headers={"Idempotency-Key": key}))
    first_response = wire.last
    assert first_response.status_code == 201
    assert first_response.request.headers["Idempotency-Key"] == key
    assert "Idempotent-Replayed" not in first_response.headers

    again = runner.run(client.request("POST", "customers", json=body, headers={"Idempotency-Key": key}))
    replayed = wire.last
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert again == first
    assert Customer.objects.filter(organization=organization).count() == 1
    assert Customer.objects.get().pk == first["id"]

    # Same key, another body: 400 idempotency_error, nothing created.
    with pytest.raises(StatesetInvalidRequestError) as caught:
        runner.run(
            client.request("POST", "customers", json={**body, "first_name": "Twice"}, headers={"Idempotency-Key": key})
        )
    assert caught.value.status_code == 400
    assert caught.value.code == "idempotency_error"
    assert Customer.objects.count() == 1

    # A different key is a different request: the email is taken now (409), and that error
    # itself is what a retry with that key replays.
    other_key = f"idem-{uuid.uuid4()}"
    for _ in range(2):
        with pytest.raises(StatesetInvalidRequestError) as caught:
            runner.run(client.request("POST", "customers", json=body, headers={"Idempotency-Key": other_key}))
        assert caught.value.status_code == 409
        assert caught.value.code == "RESOURCE_ALREADY_EXISTS"
    assert wire.last.headers["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 1
    assert isinstance(caught.value, StatesetError)


def test_idempotency_keys_are_scoped_to_the_credential_and_organization(
    runner, make_client, secret_key, other_secret_key, test_secret_key, organization, other_organization
):
    key = f"shared-{uuid.uuid4()}"
    body = {"email": "scoped@example.com"}
    results = {}
    for name, credential in (("ours", secret_key), ("theirs", other_secret_key), ("sandbox", test_secret_key)):
        client, _, wire = make_client(credential)
        results[name] = runner.run(client.request("POST", "customers", json=body, headers={"Idempotency-Key": key}))
        assert wire.last.status_code == 201
        assert "Idempotent-Replayed" not in wire.last.headers, f"{name} got another credential's response"
    assert len({r["id"] for r in results.values()}) == 3
    assert results["sandbox"]["livemode"] is False
    assert Customer.objects.get(pk=results["ours"]["id"]).organization_id == organization.pk
    assert Customer.objects.get(pk=results["theirs"]["id"]).organization_id == other_organization.pk
    assert Customer.objects.get(pk=results["sandbox"]["id"]).organization_id == organization.sandbox.pk


def test_put_and_delete_with_an_idempotency_key_replay(runner, sdk, organization):
    client, customers, wire = sdk
    created = runner.run(customers.create({"email": "mutable@example.com", "first_name": "Before"}))
    path = f"customers/{created['id']}"

    put_key = f"put-{uuid.uuid4()}"
    first = runner.run(client.request("PUT", path, json={"first_name": "After"}, headers={"Idempotency-Key": put_key}))
    second = runner.run(client.request("PUT", path, json={"first_name": "After"}, headers={"Idempotency-Key": put_key}))
    assert wire.last.headers["Idempotent-Replayed"] == "true"
    assert first == second
    assert first["first_name"] == "After"

    delete_key = f"delete-{uuid.uuid4()}"
    assert runner.run(client.request("DELETE", path, headers={"Idempotency-Key": delete_key})) is None
    assert wire.last.status_code == 204
    # A retried delete replays the 204 instead of answering 404.
    assert runner.run(client.request("DELETE", path, headers={"Idempotency-Key": delete_key})) is None
    assert (wire.last.status_code, wire.last.headers["Idempotent-Replayed"]) == (204, "true")
    assert not Customer.objects.filter(pk=created["id"]).exists()
    # Without the key, it is gone.
    with pytest.raises(StatesetNotFoundError):
        runner.run(customers.delete(created["id"]))
