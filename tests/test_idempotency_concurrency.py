"""`Idempotency-Key` under real concurrency: a live server on PostgreSQL, many parallel HTTP
connections, one key (API contract, "Writes").

Every request runs in its own thread on its own HTTP connection (and so its own server thread
and database connection); a barrier releases them together.
"""

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection, transaction

from apps.accounts.models import AuditLog
from apps.core.jsonutil import dumps
from apps.core.models import IdempotencyRecord
from apps.crm.models import Customer

from .stateset_python_sdk import sdk as stateset_sdk

pytestmark = [pytest.mark.postgres, pytest.mark.live]

PARALLEL = 20


@pytest.fixture
def customers_url(live_server):
    return f"http://127.0.0.1:{live_server.thread.port}/v1/customers"


def post(url, key, idempotency_key, body):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    with httpx.Client(timeout=60.0) as http:
        return http.post(url, content=dumps(body), headers=headers)


def post_in_parallel(url, key, idempotency_key, bodies, *, method="POST", urls=None):
    """Send each body at once, one connection per request; responses in the order of `bodies`.
    `idempotency_key=None` sends none; `urls` gives one URL per body."""
    barrier = threading.Barrier(len(bodies))

    def one(args):
        target, body = args
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        with httpx.Client(timeout=60.0) as http:
            request = http.build_request(method, target, content=dumps(body), headers=headers)
            barrier.wait(timeout=30)
            return http.send(request)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, zip(urls or [url] * len(bodies), bodies, strict=True)))


def describe(responses):
    return [(r.status_code, r.headers.get("Idempotent-Replayed"), r.text[:200]) for r in responses]


def assert_no_server_errors(responses):
    assert all(r.status_code < 500 for r in responses), describe(responses)
    for response in responses:
        assert response.headers["Content-Type"].startswith("application/json"), describe([response])


def test_twenty_parallel_requests_with_one_key_create_one_customer(customers_url, secret_key, organization):
    for round_number in range(3):  # a few rounds: each is a fresh race
        idempotency_key = f"concurrent-{uuid.uuid4()}"
        body = {"email": f"race-{round_number}@example.com", "first_name": "Race", "tags": ["parallel"]}

        responses = post_in_parallel(customers_url, secret_key, idempotency_key, [body] * PARALLEL)

        assert_no_server_errors(responses)
        assert {r.status_code for r in responses} <= {201, 409}, describe(responses)
        created = [r for r in responses if r.status_code == 201]
        in_use = [r for r in responses if r.status_code == 409]
        assert created, describe(responses)

        originals = [r for r in created if r.headers.get("Idempotent-Replayed") is None]
        replays = [r for r in created if r.headers.get("Idempotent-Replayed") is not None]
        assert len(originals) == 1, describe(responses)  # the one request that did the work
        assert all(r.headers["Idempotent-Replayed"] == "true" for r in replays)
        # Every 201 is the very same response: same bytes, same id.
        assert len({r.content for r in created}) == 1, describe(created)
        customer = created[0].json()
        assert customer["object"] == "customer"
        assert customer["email"] == body["email"]

        for response in in_use:
            error = response.json()
            assert error["type"] == "invalid_request_error"
            assert error["code"] == "idempotency_key_in_use"
            assert error["error"]["code"] == "idempotency_key_in_use"

        # Exactly one row, one audit entry, one claimed key (completed with the 201).
        rows = Customer.objects.filter(organization=organization, email=body["email"])
        assert list(rows.values_list("id", flat=True)) == [customer["id"]]
        assert AuditLog.objects.filter(action="customer.created", object_id=customer["id"]).count() == 1
        record = IdempotencyRecord.objects.get(key=idempotency_key)
        assert record.status == IdempotencyRecord.Status.COMPLETED
        assert record.response_status == 201

        # Afterwards the key replays the original, whoever asks.
        again = post(customers_url, secret_key, idempotency_key, body)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content == created[0].content

    assert Customer.objects.filter(organization=organization).count() == 3


def test_same_key_with_another_body_is_refused_and_creates_nothing(customers_url, secret_key, organization):
    idempotency_key = f"mismatch-{uuid.uuid4()}"
    original = {"email": "first@example.com", "first_name": "First"}
    first = post(customers_url, secret_key, idempotency_key, original)
    assert first.status_code == 201
    assert Customer.objects.filter(organization=organization).count() == 1

    other = {"email": "second@example.com", "first_name": "Second"}
    responses = post_in_parallel(customers_url, secret_key, idempotency_key, [other] * PARALLEL)

    assert_no_server_errors(responses)
    assert [r.status_code for r in responses] == [400] * PARALLEL, describe(responses)
    for response in responses:
        error = response.json()
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "idempotency_error"
        assert error["param"] == "Idempotency-Key"
        assert "Idempotent-Replayed" not in response.headers
    assert not Customer.objects.filter(email="second@example.com").exists()
    assert list(Customer.objects.filter(organization=organization).values_list("email", flat=True)) == [
        "first@example.com"
    ]
    # The key still replays its first response.
    again = post(customers_url, secret_key, idempotency_key, original)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert again.content == first.content


def test_parallel_requests_with_one_key_and_two_bodies_create_one_customer(customers_url, secret_key, organization):
    """Half the requests carry one body, half another, all at once: one wins, the other body's
    requests are 400, the winner's own body replays or is in use; exactly one row."""
    idempotency_key = f"mixed-{uuid.uuid4()}"
    body_a = {"email": "alpha@example.com"}
    body_b = {"email": "beta@example.com"}
    bodies = [body_a, body_b] * (PARALLEL // 2)

    responses = post_in_parallel(customers_url, secret_key, idempotency_key, bodies)

    assert_no_server_errors(responses)
    rows = list(Customer.objects.filter(organization=organization).values_list("email", flat=True))
    assert len(rows) == 1, rows
    winner = body_a if rows == ["alpha@example.com"] else body_b
    for body, response in zip(bodies, responses, strict=True):
        if body is winner:
            assert response.status_code in (201, 409), describe([response])
            if response.status_code == 409:
                assert response.json()["code"] == "idempotency_key_in_use"
            else:
                assert response.json()["email"] == winner["email"]
        else:
            assert response.status_code == 400, describe([response])
            assert response.json()["code"] == "idempotency_error"


def test_a_request_still_running_makes_the_same_key_409_in_use(customers_url, secret_key, organization):
    """Deterministic in-flight case: the first request is held inside its INSERT by a table lock
    the test owns; meanwhile the same key is 409 `idempotency_key_in_use` (same body) or 400
    `idempotency_error` (another body); once released, the first answers 201 and the key replays it."""
    idempotency_key = f"inflight-{uuid.uuid4()}"
    body = {"email": "slow@example.com", "first_name": "Slow"}
    result = {}

    with transaction.atomic():
        with connection.cursor() as cursor:
            # Blocks INSERTs into the customers table (not reads, not the idempotency table).
            cursor.execute(f"LOCK TABLE {Customer._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")

        def first_request():
            result["response"] = post(customers_url, secret_key, idempotency_key, body)

        thread = threading.Thread(target=first_request)
        thread.start()
        claimed = False
        for _ in range(200):  # the first request claims the key before it blocks on our lock
            if IdempotencyRecord.objects.filter(key=idempotency_key).exists():
                claimed = True
                break
            thread.join(timeout=0.05)
        assert claimed, "the first request never claimed its idempotency key"
        assert thread.is_alive(), result

        in_use = post(customers_url, secret_key, idempotency_key, body)
        assert in_use.status_code == 409, in_use.text
        assert in_use.json()["code"] == "idempotency_key_in_use"
        assert "Idempotent-Replayed" not in in_use.headers

        mismatch = post(customers_url, secret_key, idempotency_key, {**body, "first_name": "Other"})
        assert mismatch.status_code == 400, mismatch.text
        assert mismatch.json()["code"] == "idempotency_error"
        # Leaving the atomic block commits and releases the lock.
    thread.join(timeout=30)
    assert not thread.is_alive()

    first = result["response"]
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    replay = post(customers_url, secret_key, idempotency_key, body)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert list(Customer.objects.filter(organization=organization).values_list("id", flat=True)) == [first.json()["id"]]


def test_official_client_retries_in_use_into_the_replay(live_server, secret_key, organization):
    """Twenty official clients (each its own connection pool) POST with one key at once, with
    the client's default retry on 409 (short backoff): every one ends with the same customer."""
    base_url = f"http://127.0.0.1:{live_server.thread.port}/v1"
    idempotency_key = f"sdk-{uuid.uuid4()}"
    body = {"email": "sdk-race@example.com", "first_name": "Sdk"}
    retry = stateset_sdk.client.RetryConfig(max_attempts=5, backoff_factor=0.05)

    async def scenario():
        clients = [
            stateset_sdk.Stateset(api_key=secret_key, base_url=base_url, retry_config=retry) for _ in range(PARALLEL)
        ]
        try:
            return await asyncio.gather(
                *(
                    client.request("POST", "customers", json=body, headers={"Idempotency-Key": idempotency_key})
                    for client in clients
                )
            )
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))

    results = asyncio.run(scenario())
    assert len(results) == PARALLEL
    assert all(result == results[0] for result in results)
    assert results[0]["email"] == body["email"]
    assert list(Customer.objects.filter(organization=organization).values_list("id", flat=True)) == [results[0]["id"]]


def test_parallel_creates_of_one_email_without_a_key_create_one_customer(customers_url, secret_key, organization):
    """No idempotency key: the per-organization unique email decides. One 201, the rest 409
    RESOURCE_ALREADY_EXISTS (the unique constraint's IntegrityError, not a 500)."""
    body = {"email": "unique-race@example.com"}
    responses = post_in_parallel(customers_url, secret_key, None, [body] * PARALLEL)

    assert_no_server_errors(responses)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (PARALLEL - 1), describe(responses)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "RESOURCE_ALREADY_EXISTS"
            assert response.json()["param"] == "email"
    (winner,) = [r.json() for r in responses if r.status_code == 201]
    assert list(Customer.objects.filter(organization=organization).values_list("id", flat=True)) == [winner["id"]]
    assert AuditLog.objects.filter(action="customer.created").count() == 1


def test_parallel_updates_onto_one_email_leave_one_owner(customers_url, secret_key, organization):
    """Two customers are renamed to the same email at once, ten requests each (PUT): the one
    that commits first keeps it (200), the other customer's requests are 409; no 500."""
    first = post(customers_url, secret_key, None, {"email": "one@example.com"}).json()
    second = post(customers_url, secret_key, None, {"email": "two@example.com"}).json()
    targets = [f"{customers_url}/{first['id']}", f"{customers_url}/{second['id']}"] * (PARALLEL // 2)
    body = {"email": "wanted@example.com"}

    responses = post_in_parallel(None, secret_key, None, [body] * PARALLEL, method="PUT", urls=targets)

    assert_no_server_errors(responses)
    owners = list(Customer.objects.filter(email="wanted@example.com").values_list("id", flat=True))
    assert len(owners) == 1, owners
    (owner,) = owners
    for target, response in zip(targets, responses, strict=True):
        if target.endswith(owner):
            assert response.status_code == 200, describe([response])
            assert response.json()["email"] == "wanted@example.com"
        else:
            assert response.status_code == 409, describe([response])
            assert response.json()["code"] == "RESOURCE_ALREADY_EXISTS"
    loser = second if owner == first["id"] else first
    assert Customer.objects.get(pk=loser["id"]).email == loser["email"]
