"""GraphQL subscriptions over WebSocket, through the real `gql` client against a live ASGI server
(uvicorn in a subprocess, tests/asgi_servers.py), in both protocols: `graphql-transport-ws` and
Apollo's legacy `graphql-ws` (gql's WebsocketsTransport speaks the one it is given).

Changes are made through REST (another HTTP request to the same server, or to gunicorn in another
process) and must reach the subscriber within a second. The main server polls the outbox only once
an hour, so what arrives there came through the change notifications themselves; the safety net
(the outbox poll) has a server of its own.
"""

import asyncio
import json
import secrets
import time

import jwt
import pytest
import requests
from gql import Client, gql
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError, TransportServerError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as raw_connect

from .asgi_servers import ADMIN_SECRET, JWT_SECRET, Server, drop_database, environment, own_database, prepare

pytestmark = pytest.mark.live

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
NAMESPACE = "https://hasura.io/jwt/claims"
# No poll on the main server: a change that arrives was notified (see the module docstring).
NO_POLL = {"GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS": 3600, "GRAPHQL_WS_AUTH_RECHECK_SECONDS": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = own_database(tmp_path_factory.mktemp("asgi"), "asgi")
    env = environment(database, **NO_POLL)
    seed = prepare(env)
    asgi = Server("asgi", env)
    try:
        yield asgi, seed
    finally:
        asgi.stop()
        drop_database(database)


# Helpers ---------------------------------------------------------------------------------------


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def bearer(key):
    return {"headers": {"Authorization": f"Bearer {key}"}}


def client(url, init_payload, protocol=TRANSPORT_WS, path="/v1/ws"):
    transport = WebsocketsTransport(url=f"{url}{path}", init_payload=init_payload, subprotocols=[protocol])
    return Client(transport=transport)


def rest(server, method, path, key, body=None):
    """A REST request (another HTTP connection); the answer's JSON once the change committed."""
    response = requests.request(
        method, f"{server.http}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


async def rest_async(*args):
    return await asyncio.to_thread(rest, *args)


def tag():
    """A mark unique to one test, so tests sharing the server never see each other's rows."""
    return f"t{secrets.token_hex(4)}"


def make_jwt(organization_id, user_id="user-1", role="user", allowed=None, expires_in=300):
    claims = {
        "sub": user_id,
        "exp": int(time.time()) + expires_in,
        NAMESPACE: {
            "x-hasura-user-id": user_id,
            "x-hasura-org-id": organization_id,
            "x-hasura-default-role": role,
            "x-hasura-allowed-roles": allowed or [role],
        },
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


class Watch:
    """A subscription read in the background: each result with the time it arrived."""

    def __init__(self, session, document, **variables):
        request = gql(document)
        request.variable_values = variables or None
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._read(session, request))

    async def _read(self, session, request):
        try:
            async for result in session.subscribe(request):
                await self.queue.put((result, time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            await self.queue.put((exc, time.monotonic()))

    async def next(self, timeout=5.0):
        """The next result and when it arrived; raises what ended the subscription."""
        result, at = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(result, Exception):
            raise result
        return result, at

    async def nothing(self, seconds):
        try:
            item = await asyncio.wait_for(self.queue.get(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"nothing should have arrived, got {item[0]!r}")

    def stop(self):
        self.task.cancel()


def customers_where(mark):
    return {"email": {"_ilike": f"%{mark}%"}}


LIVE_CUSTOMERS = """
subscription Live($where: customers_bool_exp!) {
  customers(where: $where, order_by: {email: asc}) { email first_name addresses { city } }
}
"""


# Live queries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_live_query_answers_at_once_then_each_rest_change_within_a_second(server, protocol):
    asgi, seed = server
    mark = tag()
    rest(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"a-{mark}@acme.test", "first_name": "Ada"})

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_key"]), protocol) as session:
            watch = Watch(session, LIVE_CUSTOMERS, where=customers_where(mark))
            first, _ = await watch.next()
            assert first == {"customers": [{"email": f"a-{mark}@acme.test", "first_name": "Ada", "addresses": []}]}

            body = {"email": f"b-{mark}@acme.test", "first_name": "Bob", "addresses": [{"city": "Oslo", "country_code": "NO", "address_line_1": "1 Main St"}]}
            created = await rest_async(asgi, "POST", "/v1/customers", seed["acme_key"], body)
            committed = time.monotonic()
            second, arrived = await watch.next()
            assert arrived - committed < 1.0
            assert [row["email"] for row in second["customers"]] == [f"a-{mark}@acme.test", f"b-{mark}@acme.test"]
            assert second["customers"][1]["addresses"] == [{"city": "Oslo"}]

            await rest_async(asgi, "PATCH", f"/v1/customers/{created['id']}", seed["acme_key"], {"first_name": "Bobby"})
            committed = time.monotonic()
            third, arrived = await watch.next()
            assert arrived - committed < 1.0
            assert third["customers"][1]["first_name"] == "Bobby"

            await rest_async(asgi, "DELETE", f"/v1/customers/{created['id']}", seed["acme_key"])
            fourth, _ = await watch.next()
            assert [row["email"] for row in fourth["customers"]] == [f"a-{mark}@acme.test"]
            watch.stop()

    run(scenario())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nothing_is_sent_when_the_answer_did_not_change(server, protocol):
    asgi, seed = server
    mark = tag()
    created = rest(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"a-{mark}@acme.test"})

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_key"]), protocol) as session:
            watch = Watch(session, "subscription ($where: customers_bool_exp!) { customers(where: $where) { email } }", where=customers_where(mark))
            await watch.next()
            # A change to the table that the selection does not show, another customer, another table.
            await rest_async(asgi, "PATCH", f"/v1/customers/{created['id']}", seed["acme_key"], {"first_name": "Ada"})
            await rest_async(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"other-{tag()}@acme.test"})
            await rest_async(asgi, "POST", "/v1/webhooks", seed["acme_key"], {"url": "https://example.com/hook", "events": ["*"]})
            await watch.nothing(1.5)
            # A change it shows arrives once.
            await rest_async(asgi, "PATCH", f"/v1/customers/{created['id']}", seed["acme_key"], {"email": f"z-{mark}@acme.test"})
            changed, _ = await watch.next()
            assert changed == {"customers": [{"email": f"z-{mark}@acme.test"}]}
            await watch.nothing(1.0)
            watch.stop()

    run(scenario())


def test_an_aggregate_and_a_by_pk_subscription_follow_rest_writes(server):
    asgi, seed = server
    mark = tag()
    created = rest(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"a-{mark}@acme.test", "first_name": "Ada"})

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_key"])) as session:
            count = Watch(
                session,
                "subscription ($where: customers_bool_exp!) { customers_aggregate(where: $where) { aggregate { count max { email } } } }",
                where=customers_where(mark),
            )
            one = Watch(session, "subscription ($id: String!) { customers_by_pk(id: $id) { email status } }", id=created["id"])
            assert (await count.next())[0] == {"customers_aggregate": {"aggregate": {"count": 1, "max": {"email": f"a-{mark}@acme.test"}}}}
            assert (await one.next())[0] == {"customers_by_pk": {"email": f"a-{mark}@acme.test", "status": "active"}}

            await rest_async(asgi, "POST", "/v1/customers/batch", seed["acme_key"], [{"email": f"b-{mark}@acme.test"}, {"email": f"c-{mark}@acme.test"}])
            committed = time.monotonic()
            result, arrived = await count.next()
            assert arrived - committed < 1.0
            assert result == {"customers_aggregate": {"aggregate": {"count": 3, "max": {"email": f"c-{mark}@acme.test"}}}}

            await rest_async(asgi, "POST", f"/v1/customers/{created['id']}/suspend", seed["acme_key"], {"reason": "test"})
            assert (await one.next())[0] == {"customers_by_pk": {"email": f"a-{mark}@acme.test", "status": "suspended"}}
            await count.nothing(0.5)  # the status is not counted: the count stayed
            await rest_async(asgi, "DELETE", f"/v1/customers/{created['id']}", seed["acme_key"])
            assert (await one.next())[0] == {"customers_by_pk": None}
            count.stop()
            one.stop()

    run(scenario())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stream_delivers_new_rows_in_cursor_order_in_batches(server, protocol):
    asgi, seed = server
    mark = tag()
    before = rest(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"0-{mark}@acme.test"})

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_key"]), protocol) as session:
            watch = Watch(
                session,
                """
                subscription Stream($since: timestamptz!, $where: customers_bool_exp) {
                  customers_stream(batch_size: 2, cursor: {initial_value: {created_at: $since}, ordering: ASC}, where: $where) { email }
                }
                """,
                since=before["created_at"],
                where=customers_where(mark),
            )
            # Strictly after the initial value: the row created at that instant is not sent.
            assert (await watch.next())[0] == {"customers_stream": []}
            emails = [f"{index}-{mark}@acme.test" for index in range(1, 6)]
            for email in emails:
                await rest_async(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": email})
            received = []
            while len(received) < 5:
                batch, _ = await watch.next()
                assert 1 <= len(batch["customers_stream"]) <= 2
                received += [row["email"] for row in batch["customers_stream"]]
            assert received == emails  # each row once, in created_at order
            await rest_async(asgi, "PATCH", f"/v1/customers/{before['id']}", seed["acme_key"], {"first_name": "Changed"})
            await watch.nothing(1.0)  # a change to an old row is not a new row
            watch.stop()

    run(scenario())


# Credentials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        lambda seed: {"headers": {"Authorization": f"Bearer {seed['acme_key']}"}},
        lambda seed: {"Authorization": f"Bearer {seed['acme_key']}"},
        lambda seed: {"authorization": seed["acme_key"]},
        lambda seed: {"headers": {"X-API-Key": seed["acme_key"]}},
        lambda seed: {"x-hasura-admin-secret": ADMIN_SECRET, "x-hasura-org-id": seed["acme"]},
        lambda seed: {"headers": {"X-Hasura-Admin-Secret": ADMIN_SECRET, "X-Account-Id": "acme"}},
        lambda seed: {"headers": {"Authorization": f"Bearer {make_jwt(seed['acme'], role='manager')}"}},
    ],
    ids=["headers.Authorization", "Authorization", "authorization", "X-API-Key", "admin-secret+org-id", "admin-secret+X-Account-Id", "jwt"],
)
def test_connection_init_takes_every_credential_rest_takes(server, payload):
    asgi, seed = server

    async def scenario():
        async with client(asgi.ws, payload(seed)) as session:
            watch = Watch(session, "subscription { customers_aggregate { aggregate { count } } }")
            result, _ = await watch.next()
            assert result["customers_aggregate"]["aggregate"]["count"] >= 0
            watch.stop()

    run(scenario())


def test_a_refused_credential_closes_with_4403_or_the_legacy_connection_error(server):
    asgi, seed = server

    async def transport_ws():
        with pytest.raises(TransportConnectionFailed) as caught:
            async with client(asgi.ws, bearer("sk_live_not_a_key")):
                pass
        closed = caught.value.__cause__
        assert isinstance(closed, ConnectionClosed) and closed.rcvd.code == 4403
        assert "Invalid API key" in closed.rcvd.reason

    async def legacy():
        with pytest.raises(TransportServerError) as caught:
            async with client(asgi.ws, bearer("sk_live_not_a_key"), LEGACY_WS):
                pass
        assert "INVALID_API_KEY" in str(caught.value)

    async def wrong_secret():
        with pytest.raises(TransportConnectionFailed) as caught:
            async with client(asgi.ws, {"x-hasura-admin-secret": "wrong", "x-hasura-org-id": seed["acme"]}):
                pass
        assert caught.value.__cause__.rcvd.code == 4403

    run(transport_ws())
    run(legacy())
    run(wrong_secret())


def _revoke_scenario(asgi, seed, protocol):
    key = rest(asgi, "POST", "/v1/api_keys", seed["acme_key"], {"kind": "secret", "name": "to revoke"})

    async def scenario():
        async with client(asgi.ws, bearer(key["secret"]), protocol) as session:
            watch = Watch(session, "subscription { customers_aggregate { aggregate { count } } }")
            await watch.next()
            await rest_async(asgi, "POST", f"/v1/api_keys/{key['id']}/revoke", seed["acme_key"])
            revoked = time.monotonic()
            # Another change after the revocation: nothing of it may reach the revoked key.
            await rest_async(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"after-{tag()}@acme.test"})
            with pytest.raises(TransportQueryError) as caught:
                while True:
                    await watch.next(timeout=5)
                    raise AssertionError("a result reached a revoked key")
            assert time.monotonic() - revoked < 3.0
            assert caught.value.errors[0]["extensions"]["code"] == "INVALID_API_KEY"
            assert "revoked" in caught.value.errors[0]["message"]

    return scenario()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_revoking_a_key_ends_its_subscriptions_with_the_error(server, protocol):
    asgi, seed = server
    run(_revoke_scenario(asgi, seed, protocol))


def test_an_expiring_jwt_ends_its_subscriptions(server):
    asgi, seed = server
    token = make_jwt(seed["acme"], role="manager", expires_in=2)

    async def scenario():
        async with client(asgi.ws, bearer(token)) as session:
            watch = Watch(session, "subscription { customers_aggregate { aggregate { count } } }")
            await watch.next()
            with pytest.raises(TransportQueryError) as caught:
                await watch.next(timeout=6)
            assert caught.value.errors[0]["extensions"]["code"] == "INVALID_TOKEN"
            assert "expired" in caught.value.errors[0]["message"]

    run(scenario())


def test_raw_socket_is_closed_4403_after_revocation(server):
    asgi, seed = server
    key = rest(asgi, "POST", "/v1/api_keys", seed["acme_key"], {"kind": "secret"})
    with raw_connect(f"{asgi.ws}/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": bearer(key["secret"])}))
        assert json.loads(ws.recv(5)) == {"type": "connection_ack"}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "subscription { jobs { id } }"}}))
        assert json.loads(ws.recv(5))["type"] == "next"
        rest(asgi, "POST", f"/v1/api_keys/{key['id']}/revoke", seed["acme_key"])
        error = json.loads(ws.recv(5))
        assert error["type"] == "error" and error["id"] == "1"
        assert error["payload"][0]["extensions"]["code"] == "INVALID_API_KEY"
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(5)
        assert caught.value.rcvd.code == 4403


# Per-role schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_role_subscribes_only_to_what_it_may_read(server, protocol):
    asgi, seed = server

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_jobs_key"]), protocol) as session:
            with pytest.raises(TransportQueryError) as caught:
                await Watch(session, "subscription { customers { id } }").next()
            assert caught.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "Cannot query field 'customers' on type 'subscription_root'" in caught.value.errors[0]["message"]
            watch = Watch(session, "subscription { jobs_aggregate { aggregate { count } } }")
            assert (await watch.next())[0] == {"jobs_aggregate": {"aggregate": {"count": 0}}}
            watch.stop()
        async with client(asgi.ws, bearer(make_jwt(seed["acme"]))) as session:
            with pytest.raises(TransportQueryError) as caught:
                await Watch(session, "subscription { audit_logs { id } }").next()
            assert caught.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    run(scenario())


def test_a_user_jwt_live_query_shows_only_its_own_rows(server):
    asgi, seed = server
    mark = tag()
    token = make_jwt(seed["acme"], user_id=f"user-{mark}")
    insert = "mutation ($email: String!) { insert_customers_one(object: {email: $email}) { email } }"

    async def scenario():
        async with client(asgi.ws, bearer(token)) as session:
            watch = Watch(session, LIVE_CUSTOMERS, where=customers_where(mark))
            assert (await watch.next())[0] == {"customers": []}
            # The admin's row is not the user's: nothing to send.
            await rest_async(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"admin-{mark}@acme.test"})
            await watch.nothing(1.0)
            # The user's own row (a mutation over the socket) is.
            request = gql(insert)
            request.variable_values = {"email": f"own-{mark}@acme.test"}
            assert await session.execute(request) == {"insert_customers_one": {"email": f"own-{mark}@acme.test"}}
            assert [row["email"] for row in (await watch.next())[0]["customers"]] == [f"own-{mark}@acme.test"]
            watch.stop()

    run(scenario())


def test_a_jwt_role_picked_with_x_hasura_role(server):
    asgi, seed = server
    mark = tag()
    rest(asgi, "POST", "/v1/customers", seed["acme_key"], {"email": f"admin-{mark}@acme.test"})
    token = make_jwt(seed["acme"], role="user", allowed=["user", "manager"])

    async def scenario():
        for role, expected in (("user", []), ("manager", [f"admin-{mark}@acme.test"])):
            payload = {"headers": {"Authorization": f"Bearer {token}", "x-hasura-role": role}}
            async with client(asgi.ws, payload) as session:
                watch = Watch(session, "subscription ($where: customers_bool_exp!) { customers(where: $where) { email } }", where=customers_where(mark))
                assert [row["email"] for row in (await watch.next())[0]["customers"]] == expected
                watch.stop()
        with pytest.raises(TransportConnectionFailed):
            async with client(asgi.ws, {"headers": {"Authorization": f"Bearer {token}", "x-hasura-role": "admin"}}):
                pass

    run(scenario())


# Tenancy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_another_organization_and_the_other_mode_never_hear_a_change(server, protocol):
    asgi, seed = server
    mark = tag()
    query = "subscription ($where: customers_bool_exp!) { customers(where: $where) { email } }"

    async def scenario():
        async with (
            client(asgi.ws, bearer(seed["acme_key"]), protocol) as live,
            client(asgi.ws, bearer(seed["acme_test_key"]), protocol) as sandbox,
            client(asgi.ws, bearer(seed["globex_key"]), protocol) as globex,
        ):
            watches = {
                "live": Watch(live, query, where=customers_where(mark)),
                "sandbox": Watch(sandbox, query, where=customers_where(mark)),
                "globex": Watch(globex, query, where=customers_where(mark)),
            }
            for watch in watches.values():
                assert (await watch.next())[0] == {"customers": []}
            writers = {"live": seed["acme_key"], "sandbox": seed["acme_test_key"], "globex": seed["globex_key"]}
            for name, key in writers.items():
                email = f"{name}-{mark}@example.test"
                await rest_async(asgi, "POST", "/v1/customers", key, {"email": email})
                assert (await watches[name].next())[0] == {"customers": [{"email": email}]}
                for other, watch in watches.items():
                    if other != name:
                        await watch.nothing(0.3)
            for watch in watches.values():
                await watch.nothing(0.5)
                watch.stop()

    run(scenario())


# Queries and mutations over the socket -----------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_queries_and_mutations_over_the_socket_answer_once(server, protocol):
    asgi, seed = server
    mark = tag()

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_key"]), protocol, path="/v1/graphql") as session:
            watch = Watch(session, "subscription ($where: customers_bool_exp!) { customers_aggregate(where: $where) { aggregate { count } } }", where=customers_where(mark))
            assert (await watch.next())[0] == {"customers_aggregate": {"aggregate": {"count": 0}}}
            created = await session.execute(gql(f'mutation {{ insert_customers_one(object: {{email: "a-{mark}@acme.test"}}) {{ id email }} }}'))
            assert created["insert_customers_one"]["email"] == f"a-{mark}@acme.test"
            assert (await watch.next())[0] == {"customers_aggregate": {"aggregate": {"count": 1}}}
            found = await session.execute(gql(f'{{ customers_by_pk(id: "{created["insert_customers_one"]["id"]}") {{ email }} }}'))
            assert found == {"customers_by_pk": {"email": f"a-{mark}@acme.test"}}
            suspended = await session.execute(gql(f'mutation {{ suspend_customer(id: "{created["insert_customers_one"]["id"]}", reason: "ws") {{ status }} }}'))
            assert suspended == {"suspend_customer": {"status": "suspended"}}
            with pytest.raises(TransportQueryError) as caught:
                await session.execute(gql('mutation { insert_customers_one(object: {email: "not an email"}) { id } }'))
            assert caught.value.errors[0]["extensions"]["code"] == "VALIDATION_ERROR"
            await watch.nothing(0.5)
            watch.stop()
        # The audit trail of the socket's mutation names the credential, as REST's would.
        logs = rest(asgi, "GET", "/v1/audit_logs?action=customer.created&limit=100", seed["acme_key"])
        assert any(entry["object_id"] == created["insert_customers_one"]["id"] for entry in logs["data"])

    run(scenario())


# Protocol errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_documents_get_errors_with_codes(server, protocol):
    asgi, seed = server

    async def scenario():
        async with client(asgi.ws, bearer(seed["acme_key"]), protocol) as session:
            cases = [
                ("subscription { customers { nope } }", "GRAPHQL_VALIDATION_FAILED"),
                ("subscription { customers { id } jobs { id } }", "GRAPHQL_VALIDATION_FAILED"),
                ("subscription { customers(limit: 5000) { id } }", "GRAPHQL_VALIDATION_FAILED"),
                ("subscription ($n: Int!) { customers(limit: $n) { id } }", "GRAPHQL_VALIDATION_FAILED"),
                ("subscription { customers_stream(batch_size: 1, cursor: {initial_value: {}}) { id } }", "GRAPHQL_VALIDATION_FAILED"),
                ("subscription { a: customers { a: addresses { a: customer { a: addresses { a: customer { a: addresses { a: customer { a: addresses { a: customer { a: addresses { id } } } } } } } } } } }", "QUERY_TOO_DEEP"),
            ]
            for document, code in cases:
                with pytest.raises(TransportQueryError) as caught:
                    await Watch(session, document).next()
                assert caught.value.errors[0]["extensions"]["code"] == code, document

    run(scenario())


def raw(server, protocol=TRANSPORT_WS, path="/v1/ws"):
    return raw_connect(f"{server.ws}{path}", subprotocols=[protocol])


def closed_with(ws, timeout=5):
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            ws.recv(timeout)
    return caught.value.rcvd.code, caught.value.rcvd.reason


def test_graphql_transport_ws_close_codes(server):
    asgi, seed = server
    init = json.dumps({"type": "connection_init", "payload": bearer(seed["acme_key"])})
    subscribe = json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "subscription { jobs { id } }"}})

    with raw(asgi) as ws:  # subscribe before connection_ack
        ws.send(subscribe)
        assert closed_with(ws) == (4401, "Unauthorized")
    with raw(asgi) as ws:  # connection_init twice
        ws.send(init)
        assert json.loads(ws.recv(5)) == {"type": "connection_ack"}
        ws.send(init)
        assert closed_with(ws) == (4429, "Too many initialisation requests")
    with raw(asgi) as ws:  # an id already running
        ws.send(init)
        ws.recv(5)
        ws.send(subscribe)
        assert json.loads(ws.recv(5))["type"] == "next"
        ws.send(subscribe)
        assert closed_with(ws) == (4409, "Subscriber for 1 already exists")
    for message in ("not json", json.dumps({"type": "start", "id": "1"}), json.dumps([1])):
        with raw(asgi) as ws:
            ws.send(init)
            ws.recv(5)
            ws.send(message)
            code, reason = closed_with(ws)
            assert code == 4400 and reason.startswith("Invalid message"), (message, reason)
    with raw(asgi) as ws:  # a message over the size limit
        ws.send(init)
        ws.recv(5)
        ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": "{" + " " * 1_100_000 + "}"}}))
        code, reason = closed_with(ws)
        assert code == 4400 and reason.startswith("Message too large")
    with raw(asgi) as ws:  # a document that does not parse (gql parses before sending: raw here)
        ws.send(init)
        ws.recv(5)
        ws.send(json.dumps({"id": "p", "type": "subscribe", "payload": {"query": "subscription { jobs { id "}}))
        error = json.loads(ws.recv(5))
        assert error["type"] == "error" and error["id"] == "p"
        assert error["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    with raw(asgi) as ws:  # ping, pong, complete, then a clean close
        ws.send(init)
        ws.recv(5)
        ws.send(json.dumps({"type": "ping", "payload": {"n": 1}}))
        assert json.loads(ws.recv(5)) == {"type": "pong", "payload": {"n": 1}}
        ws.send(subscribe)
        assert json.loads(ws.recv(5))["type"] == "next"
        ws.send(json.dumps({"id": "1", "type": "complete"}))
        ws.send(subscribe)  # the id is free again
        assert json.loads(ws.recv(5)) == {"id": "1", "type": "next", "payload": {"data": {"jobs": []}}}


def test_graphql_ws_legacy_messages(server):
    asgi, seed = server
    with raw(asgi, LEGACY_WS, "/graphql") as ws:
        ws.send(json.dumps({"id": "1", "type": "start", "payload": {"query": "subscription { jobs { id } }"}}))
        early = json.loads(ws.recv(5))
        assert early["type"] == "error" and early["id"] == "1"
        ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {seed['acme_key']}"}}))
        assert json.loads(ws.recv(5)) == {"type": "connection_ack"}
        assert json.loads(ws.recv(5)) == {"type": "ka"}
        ws.send(json.dumps({"id": "1", "type": "start", "payload": {"query": "subscription { jobs { id } }"}}))
        assert json.loads(ws.recv(5)) == {"id": "1", "type": "data", "payload": {"data": {"jobs": []}}}
        ws.send(json.dumps({"id": "2", "type": "start", "payload": {"query": "{ jobs_aggregate { aggregate { count } } }"}}))
        assert json.loads(ws.recv(5)) == {"id": "2", "type": "data", "payload": {"data": {"jobs_aggregate": {"aggregate": {"count": 0}}}}}
        assert json.loads(ws.recv(5)) == {"id": "2", "type": "complete"}
        ws.send(json.dumps({"id": "3", "type": "start", "payload": {"query": "{ nope }"}}))
        error = json.loads(ws.recv(5))
        assert error["type"] == "error" and error["payload"]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        ws.send("not json")
        error = json.loads(ws.recv(5))
        assert error["type"] == "error" and error["payload"]["extensions"]["code"] == "BAD_REQUEST"
        ws.send(json.dumps({"id": "1", "type": "stop"}))
        assert json.loads(ws.recv(5)) == {"id": "1", "type": "complete"}
        ws.send(json.dumps({"type": "connection_terminate"}))
        assert closed_with(ws)[0] == 1000
    with raw(asgi, LEGACY_WS) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"x-hasura-admin-secret": "wrong", "x-hasura-org-id": seed["acme"]}}))
        error = json.loads(ws.recv(5))
        assert error["type"] == "connection_error" and error["payload"]["extensions"]["code"] == "INVALID_API_KEY"
        assert closed_with(ws)[0] == 4403


def test_operations_per_connection_are_limited(server):
    asgi, seed = server
    with raw(asgi) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": bearer(seed["acme_key"])}))
        ws.recv(5)
        for index in range(100):
            ws.send(json.dumps({"id": str(index), "type": "subscribe", "payload": {"query": "subscription { jobs { id } }"}}))
        for _ in range(100):
            assert json.loads(ws.recv(10))["type"] == "next"
        ws.send(json.dumps({"id": "100", "type": "subscribe", "payload": {"query": "subscription { jobs { id } }"}}))
        error = json.loads(ws.recv(5))
        assert error["type"] == "error" and error["id"] == "100"
        assert error["payload"][0]["extensions"]["code"] == "RATE_LIMIT_EXCEEDED"


def test_other_paths_and_subprotocols_are_refused(server):
    asgi, _seed = server
    from websockets.exceptions import InvalidStatus

    for path, protocols in (("/v1/other", [TRANSPORT_WS]), ("/v1/ws", ["mqtt"])):
        with pytest.raises(InvalidStatus) as caught:
            raw_connect(f"{asgi.ws}{path}", subprotocols=protocols)
        assert caught.value.response.status_code == 403


# The safety net and other processes -------------------------------------------------------------


WRITE_IN_ANOTHER_PROCESS = """
import sys
import django
django.setup()
from apps.accounts.models import Organization
from apps.core.context import Actor
from apps.crm.services import customer_create
organization = Organization.objects.get(pk=sys.argv[1])
customer_create(organization=organization, actor=Actor.system(organization, "command"), data={"email": sys.argv[2]})
"""


def test_a_write_whose_notification_is_lost_arrives_through_the_outbox_poll(tmp_path):
    """A management command (a process with no channel layer to notify through) writes: the
    server's outbox poll finds the event and re-runs the subscription."""
    import subprocess
    import sys

    from .asgi_servers import ROOT

    database = own_database(tmp_path, "poll")
    env = environment(database, GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS=0.5)
    seed = prepare(env)
    asgi = Server("asgi", env)
    mark = tag()
    try:

        async def scenario():
            async with client(asgi.ws, bearer(seed["acme_key"])) as session:
                watch = Watch(session, "subscription ($where: customers_bool_exp!) { customers(where: $where) { email } }", where=customers_where(mark))
                assert (await watch.next())[0] == {"customers": []}
                command = [sys.executable, "-c", WRITE_IN_ANOTHER_PROCESS, seed["acme"], f"cmd-{mark}@acme.test"]
                done = await asyncio.to_thread(subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, done.stderr
                written = time.monotonic()
                result, arrived = await watch.next(timeout=5)
                assert result == {"customers": [{"email": f"cmd-{mark}@acme.test"}]}
                assert arrived - written < 2.5
                await watch.nothing(1.5)  # found once
                watch.stop()

        run(scenario())
    finally:
        asgi.stop()
        drop_database(database)


@pytest.mark.redis
def test_a_rest_write_served_by_gunicorn_reaches_a_subscriber_on_the_asgi_server(tmp_path):
    """Two processes: gunicorn serves the REST write, uvicorn the subscription; the notification
    crosses through channels-redis (the poll is off, so nothing else could carry it)."""
    import os

    database = own_database(tmp_path, "redis")
    env = environment(database, redis_url=os.environ["REDIS_URL"], **NO_POLL)
    seed = prepare(env)
    asgi = Server("asgi", env)
    wsgi = Server("wsgi", env)
    mark = tag()
    try:

        async def scenario():
            async with (
                client(asgi.ws, bearer(seed["acme_key"])) as session,
                client(asgi.ws, bearer(seed["acme_test_key"])) as sandbox,
            ):
                query = "subscription ($where: customers_bool_exp!) { customers(where: $where) { email } }"
                watch = Watch(session, query, where=customers_where(mark))
                other_mode = Watch(sandbox, query, where=customers_where(mark))
                assert (await watch.next())[0] == {"customers": []}
                assert (await other_mode.next())[0] == {"customers": []}
                for index in range(3):
                    email = f"{index}-{mark}@acme.test"
                    await rest_async(wsgi, "POST", "/v1/customers", seed["acme_key"], {"email": email})
                    written = time.monotonic()
                    result, arrived = await watch.next()
                    assert arrived - written < 1.0
                    assert result["customers"][-1] == {"email": email}
                await other_mode.nothing(0.5)
                # A key revoked through gunicorn ends its subscriptions on the ASGI server too.
                key = await rest_async(wsgi, "POST", "/v1/api_keys", seed["acme_key"], {"kind": "secret"})
                async with client(asgi.ws, bearer(key["secret"])) as doomed:
                    ending = Watch(doomed, "subscription { jobs { id } }")
                    await ending.next()
                    await rest_async(wsgi, "POST", f"/v1/api_keys/{key['id']}/revoke", seed["acme_key"])
                    with pytest.raises(TransportQueryError) as caught:
                        await ending.next(timeout=3)
                    assert caught.value.errors[0]["extensions"]["code"] == "INVALID_API_KEY"
                watch.stop()
                other_mode.stop()

        run(scenario())
    finally:
        wsgi.stop()
        asgi.stop()
        drop_database(database)
