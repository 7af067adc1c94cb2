"""The machinery behind GraphQL subscriptions, in-process (no server; SQLite is enough): the
subscription root of each role, what a document reads, the grouping that multiplexes identical
subscriptions, the change notifications gathered per transaction, streams' cursors, and the
queries a run costs. The protocols and the whole path run against a live server in
tests/test_graphql_subscriptions.py."""

import asyncio
import time

import pytest
from django.db import transaction

from apps.accounts.models import Plan
from apps.accounts.services import organization_create
from apps.core.context import Actor
from apps.crm.models import Customer
from apps.crm.services import customer_create, customer_update
from apps.events.models import Event
from apps.graphql import live, notify
from apps.graphql.schema import get_schema
from apps.graphql.tables import all_tables

pytestmark = pytest.mark.django_db


def admin(organization, credential="key_1"):
    return Actor(organization=organization, role="admin", credential_type="api_key", credential_id=credential, api_key_kind="secret")


def restricted(organization, *scopes):
    return Actor(organization=organization, role="manager", credential_type="api_key", credential_id="key_r", api_key_kind="restricted", scopes=scopes)


def user(organization, user_id):
    return Actor(organization=organization, role="user", credential_type="jwt", credential_id=f"jwt:{user_id}", user_id=user_id)


def prepared(actor, document, **variables):
    kind, detail = live.prepare(actor, document, variables or None, None)
    assert kind == "subscription", detail
    return detail


# The subscription root ---------------------------------------------------------------------------


def test_the_subscription_root_mirrors_each_roles_query_root(organization):
    for actor in (admin(organization), restricted(organization, "customers:read"), user(organization, "u1")):
        schema = get_schema(actor)
        query, subscription = schema.query_type.fields, schema.subscription_type.fields
        tables = {name for name in query if not name.endswith(("_by_pk", "_aggregate"))}
        assert set(subscription) == set(query) | {f"{name}_stream" for name in tables}
        for name in query:
            assert subscription[name] is query[name]  # the same field: same arguments, same resolver
    assert "audit_logs" not in get_schema(user(organization, "u1")).subscription_type.fields
    assert set(get_schema(restricted(organization, "customers:read")).subscription_type.fields) == {
        f"{table}{suffix}" for table in ("customers", "customer_addresses") for suffix in ("", "_by_pk", "_aggregate", "_stream")
    }
    # A caller who may read nothing has nothing to subscribe to.
    assert get_schema(None).subscription_type is None


def test_a_subscription_with_no_credential_is_told_what_is_missing(organization):
    kind, errors = live.prepare(None, "subscription { customers { id } }", None, None)
    assert kind == "errors" and errors[0]["extensions"]["code"] == "MISSING_API_KEY"
    assert live.prepare(admin(organization), "{ customers { id } }", None, None) == ("single", None)
    assert live.prepare(admin(organization), "mutation { delete_customers_by_pk(id: \"x\") { id } }", None, None) == ("single", None)


# What a document reads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "labels"),
    [
        ("subscription { customers { email } }", {"crm.Customer"}),
        ("subscription { customers_by_pk(id: \"x\") { email } }", {"crm.Customer"}),
        ("subscription { customers_aggregate { aggregate { count } } }", {"crm.Customer"}),
        ("subscription { customers { addresses { city } } }", {"crm.Customer", "crm.CustomerAddress"}),
        ("subscription { customer_addresses { city } }", {"crm.CustomerAddress"}),
        # a `where` may reach through relationships: what it may reach counts
        ("subscription { customers(where: {email: {_eq: \"a\"}}) { id } }", {"crm.Customer", "crm.CustomerAddress"}),
        ("subscription { webhook_deliveries { status event { type } } }", {"events.WebhookDelivery", "events.Event"}),
        ("subscription { customers_stream(batch_size: 1, cursor: {initial_value: {email: \"\"}}) { id } }", {"crm.Customer"}),
        ("subscription { ...F } fragment F on subscription_root { jobs { id } }", {"core.Job"}),
    ],
)
def test_a_subscription_reruns_for_the_tables_it_reads(organization, document, labels):
    assert prepared(admin(organization), document).labels == frozenset(labels)


# Grouping ------------------------------------------------------------------------------------------------


def test_subscriptions_share_a_run_only_when_their_answers_are_the_same(organization, other_organization):
    document = "subscription { customers { email } }"
    key = lambda actor, doc=document, **variables: live.group_key(actor, prepared(actor, doc, **variables))  # noqa: E731
    # Two secret keys of an organization read the same rows: one run for both.
    assert key(admin(organization, "key_1")) == key(admin(organization, "key_2"))
    # Not another organization, nor its sandbox, another role or scopes, other variables.
    assert key(admin(organization)) != key(admin(other_organization))
    assert key(admin(organization)) != key(admin(organization.sandbox))
    assert key(admin(organization)) != key(restricted(organization, "customers:read"))
    variables_doc = "subscription ($n: Int) { customers(limit: $n) { email } }"
    assert key(admin(organization), variables_doc, n=1) != key(admin(organization), variables_doc, n=2)
    # The user role reads its own rows: each user runs alone.
    assert key(user(organization, "u1")) != key(user(organization, "u2"))
    assert key(user(organization, "u1")) == key(user(organization, "u1"))


class FakeConnection:
    """What the hub needs of a connection: the answers it is handed are kept."""

    def __init__(self, actor):
        self.actor = actor
        self.meta = {}
        self.path = "/v1/ws"
        self.request_id = "req_test"
        self.subscriptions = {}
        self.received = []

    def deliver(self, subscription, payload):
        self.received.append((subscription.op_id, payload))

    def credential_refused(self, exc):
        raise AssertionError(exc)


async def until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
def quiet_hub(settings):
    """A hub that neither polls the outbox nor re-checks credentials during the test."""
    settings.GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS = 3600
    settings.GRAPHQL_WS_AUTH_RECHECK_SECONDS = 3600


def test_a_change_reruns_each_group_once_and_sends_only_what_changed(transactional_db, quiet_hub, monkeypatch):
    organization = organization_create(name="Acme", slug="acme", plan=Plan.GROWTH)
    actor = admin(organization)
    customer = customer_create(organization=organization, actor=Actor.system(organization), data={"email": "a@acme.test"})
    runs = []
    real_run = live.run_prepared

    def counted(prepared_operation, *args):
        runs.append(prepared_operation.query)
        return real_run(prepared_operation, *args)

    monkeypatch.setattr(live, "run_prepared", counted)
    emails = "subscription { customers { email } }"
    count = "subscription { customers_aggregate { aggregate { count } } }"
    jobs = "subscription { jobs { id } }"

    async def scenario():
        hub = live.Hub(asyncio.get_running_loop())
        hub.start()
        try:
            connections = [FakeConnection(actor) for _ in range(10)]
            for connection in connections:
                hub.connection_opened(connection)
                for index in range(50):
                    hub.subscribe(connection, f"e{index}", actor, prepared(actor, emails))
                hub.subscribe(connection, "count", actor, prepared(actor, count))
                hub.subscribe(connection, "jobs", actor, prepared(actor, jobs))
            await until(lambda: all(len(connection.received) == 52 for connection in connections))
            assert sorted(set(runs)) == sorted({emails, count, jobs})
            runs.clear()
            for connection in connections:
                connection.received.clear()

            # 500 subscriptions of one document, 10 of another, 10 of a third: the change of an
            # email re-runs the two that read customers once each; only the emails changed.
            await asyncio.to_thread(
                customer_update, organization=organization, actor=Actor.system(organization), instance=customer, data={"email": "b@acme.test"}
            )
            await until(lambda: all(len(connection.received) == 50 for connection in connections))
            await asyncio.sleep(0.3)
            assert sorted(runs) == sorted([emails, count])
            for connection in connections:
                assert {op_id for op_id, _payload in connection.received} == {f"e{index}" for index in range(50)}
                assert all('"b@acme.test"' in payload for _op_id, payload in connection.received)
        finally:
            hub.stop()

    asyncio.run(scenario())


# Change notifications ------------------------------------------------------------------------------


@pytest.fixture
def received():
    """Changes this process's hubs would get, as a hub gets them (through an event loop)."""
    loop = asyncio.new_event_loop()
    changes = []
    token = notify.add_receiver(loop, lambda batch, origin: changes.append(batch))

    def drain():
        loop.run_until_complete(asyncio.sleep(0.01))
        return changes

    yield drain
    notify.remove_receiver(token)
    loop.close()


def test_a_transaction_notifies_once_when_it_commits_and_a_rollback_never(transactional_db, received):
    organization = organization_create(name="Acme", slug="acme", plan=Plan.GROWTH)
    system = Actor.system(organization)
    received().clear()
    with transaction.atomic():
        created = [customer_create(organization=organization, actor=system, data={"email": f"{n}@acme.test"}) for n in range(3)]
        assert received() == []  # nothing before the commit
    batches = received()
    assert len(batches) == 1
    labels, events = batches[0][organization.pk]
    assert {"crm.Customer", "events.Event", "events.WebhookDelivery", "accounts.AuditLog"} <= labels
    assert events == set(Event.objects.filter(object_id__in=[c.pk for c in created]).values_list("id", flat=True))

    batches.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        customer_create(organization=organization, actor=system, data={"email": "gone@acme.test"})
        raise RuntimeError
    assert received() == []

    # The first change in a savepoint that rolls back, then one that stays: the commit tells of it.
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            customer_create(organization=organization, actor=system, data={"email": "gone@acme.test"})
            raise RuntimeError
        customer_create(organization=organization, actor=system, data={"email": "kept@acme.test"})
    batches = received()
    assert len(batches) == 1 and "crm.Customer" in batches[0][organization.pk][0]
    kept = Event.objects.get(object_id=Customer.objects.get(email="kept@acme.test").pk)
    assert batches[0][organization.pk][1] == {kept.pk}


def test_each_organization_hears_only_its_own_changes(transactional_db, received):
    acme = organization_create(name="Acme", slug="acme", plan=Plan.GROWTH)
    globex = organization_create(name="Globex", slug="globex", plan=Plan.GROWTH)
    received().clear()
    customer_create(organization=acme.sandbox, actor=Actor.system(acme.sandbox), data={"email": "s@acme.test"})
    customer_create(organization=globex, actor=Actor.system(globex), data={"email": "g@globex.test"})
    batches = received()
    assert [set(batch) for batch in batches] == [{acme.sandbox.pk}, {globex.pk}]


# Streams and query counts ----------------------------------------------------------------------------


def test_a_stream_cursor_never_loses_or_repeats_rows_sharing_a_value(organization):
    actor = admin(organization)
    system = Actor.system(organization)
    ids = [customer_create(organization=organization, actor=system, data={"email": f"{n}@acme.test"}).pk for n in range(3)]
    Customer.objects.filter(pk__in=ids).update(created_at="2024-05-01T00:00:00Z")  # one instant for all three
    stream = prepared(
        actor,
        'subscription { customers_stream(batch_size: 1, cursor: {initial_value: {created_at: "2024-04-30T00:00:00Z"}}) { id } }',
    )
    seen, cursor = [], None
    for _ in range(4):
        payload, cursor_after, rows = live.run_prepared(stream, actor, cursor)
        if not rows:
            break
        seen += [row["id"] for row in live.orjson.loads(payload)["data"]["customers_stream"]]
        cursor = cursor_after
    assert seen == sorted(ids)


def test_a_run_costs_a_query_per_level_whatever_the_rows(organization, django_assert_num_queries):
    actor = admin(organization)
    system = Actor.system(organization)
    for n in range(20):
        address = {"address_line_1": "1 Main St", "city": f"City {n}", "country_code": "US"}
        customer_create(organization=organization, actor=system, data={"email": f"{n}@acme.test", "addresses": [address]})
    documents = {
        "subscription { customers { email addresses { city } } }": 2,
        "subscription { customers_aggregate { aggregate { count } nodes { email addresses { city } } } }": 3,
        'subscription { customers_stream(batch_size: 50, cursor: {initial_value: {email: ""}}) { email addresses { city } } }': 2,
    }
    for document, queries in documents.items():
        operation = prepared(actor, document)
        with django_assert_num_queries(queries):
            payload, _cursor, _rows = live.run_prepared(operation, actor)
        assert "City 19" in payload


def test_the_outbox_poll_reads_recent_events_in_one_query(organization, other_organization, django_assert_num_queries):
    system = Actor.system(organization)
    customer_create(organization=organization, actor=system, data={"email": "a@acme.test"})
    customer_create(organization=other_organization, actor=Actor.system(other_organization), data={"email": "b@globex.test"})
    with django_assert_num_queries(1):
        rows = live.recent_events([organization.pk], lookback=10)
    assert [(org, object_type) for _id, org, object_type in rows] == [(organization.pk, "customer")]
    assert live._labels_of_object_type("customer") == {"crm.Customer"}
    assert "crm.Customer" in {table.label for table in all_tables().values()}
