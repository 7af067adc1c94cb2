"""GraphQL mutations (apps/graphql/mutations.py) through the real `gql` client against a live
server: every kind on customers, an action, the contract's error codes with nothing changed,
tenancy, roles and scopes, events and audit rows as REST writes them, idempotent replays."""

import pytest
import requests

from apps.accounts.models import AuditLog
from apps.accounts.services import api_key_create
from apps.core.context import Actor
from apps.crm.models import Customer, CustomerAddress
from apps.events.models import Event, WebhookEndpoint
from apps.events.services import webhook_endpoint_create
from tests import test_graphql as base

# The GraphQL tests' client and JWT fixtures, shared rather than copied.
connect = base.connect
_jwt_secret = base._jwt_secret
fails, make_customer, make_jwt, run = base.fails, base.make_customer, base.make_jwt, base.run

pytestmark = [pytest.mark.django_db, pytest.mark.live]

FIELDS = "id email first_name status metadata tags addresses { city }"


def snapshot():
    """Every row a mutation could touch: a failed one must leave all of them as they were."""
    return (
        list(Customer.objects.order_by("pk").values()),
        CustomerAddress.objects.count(),
        Event.objects.count(),
        AuditLog.objects.count(),
    )


@pytest.fixture
def acme(organization, other_organization):
    return {
        "ada": make_customer(organization, "ada@acme.test", first_name="Ada", created_by="user-1"),
        "bob": make_customer(organization, "bob@acme.test", first_name="Bob"),
        "globex": make_customer(other_organization, "gus@globex.test", first_name="Gus"),
    }


def test_every_mutation_kind_on_customers(connect, secret_key, organization, acme):
    client = connect(secret_key)
    one = run(
        client,
        f"""mutation($object: customers_insert_input!) {{ insert_customers_one(object: $object) {{ {FIELDS} }} }}""",
        object={
            "email": "Cy@Acme.test",
            "first_name": "Cy",
            "metadata": {"tier": "gold"},
            "tags": ["vip"],
            "activation_date": "2024-05-01T00:00:00Z",
            # Hasura's nested insert: the addresses are written by customer_create, as REST writes them.
            "addresses": {"data": [{"address_line_1": "1 Main St", "city": "Lyon", "country_code": "FR"}]},
        },
    )["insert_customers_one"]
    assert one["email"] == "cy@acme.test" and one["metadata"] == {"tier": "gold"} and one["tags"] == ["vip"]
    assert one["addresses"] == [{"city": "Lyon"}]
    # Written as REST writes: the event and the audit row of the creation.
    event = Event.objects.get(type="customer.created", object_id=one["id"])
    assert event.organization_id == organization.id
    assert AuditLog.objects.filter(object_id=one["id"]).exists()

    many = run(
        client,
        """mutation { insert_customers(objects: [{email: "d1@acme.test"}, {email: "d2@acme.test", first_name: "D"}]) {
             affected_rows returning { email first_name } } }""",
    )["insert_customers"]
    assert many == {
        "affected_rows": 2,
        "returning": [{"email": "d1@acme.test", "first_name": ""}, {"email": "d2@acme.test", "first_name": "D"}],
    }

    updated = run(
        client,
        """mutation($id: String!) { update_customers_by_pk(pk_columns: {id: $id}, _set: {first_name: "Adah", phone: "1"}) {
             id first_name phone } }""",
        id=acme["ada"].pk,
    )["update_customers_by_pk"]
    assert updated == {"id": acme["ada"].pk, "first_name": "Adah", "phone": "1"}
    assert Event.objects.filter(type="customer.updated", object_id=acme["ada"].pk).exists()

    bulk = run(
        client,
        """mutation { update_customers(where: {email: {_like: "d%@acme.test"}}, _set: {last_name: "Bulk"}) {
             affected_rows returning { email last_name } } }""",
    )["update_customers"]
    assert bulk["affected_rows"] == 2 and {c["last_name"] for c in bulk["returning"]} == {"Bulk"}

    deleted = run(client, "mutation($id: String!) { delete_customers_by_pk(id: $id) { email } }", id=acme["bob"].pk)[
        "delete_customers_by_pk"
    ]
    assert deleted == {"email": "bob@acme.test"} and not Customer.objects.filter(pk=acme["bob"].pk).exists()

    gone = run(
        client,
        """mutation { delete_customers(where: {last_name: {_eq: "Bulk"}}) { affected_rows returning { email } } }""",
    )["delete_customers"]
    assert gone["affected_rows"] == 2 and {c["email"] for c in gone["returning"]} == {"d1@acme.test", "d2@acme.test"}
    assert Customer.objects.filter(organization=organization).count() == 2  # ada and cy
    # No writable integer column on customers: no _inc.
    errors = fails(client, "mutation { update_customers(where: {}, _inc: {first_name: 1}) { affected_rows } }")
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_an_action_mutation_and_an_illegal_move(connect, secret_key, acme):
    client = connect(secret_key)
    ada = acme["ada"].pk
    data = run(client, 'mutation($id: String!) { suspend_customer(id: $id, reason: "fraud") { id status } }', id=ada)
    assert data == {"suspend_customer": {"id": ada, "status": "suspended"}}
    assert Event.objects.filter(type="customer.suspended", object_id=ada).exists()
    # suspended -> inactive is not a move of the table: 409, nothing written.
    before = snapshot()
    errors = fails(client, "mutation($id: String!) { deactivate_customer(id: $id) { status } }", id=ada)
    assert errors[0]["extensions"]["code"] == "RESOURCE_CONFLICT"
    assert errors[0]["path"] == ["deactivate_customer"]
    assert snapshot() == before
    assert run(client, "mutation($id: String!) { activate_customer(id: $id) { status } }", id=ada) == {
        "activate_customer": {"status": "active"}
    }


def test_failed_mutations_answer_codes_and_change_nothing(connect, secret_key, acme):
    client = connect(secret_key)
    before = snapshot()
    cases = [
        (
            'mutation { insert_customers_one(object: {first_name: "No email"}) { id } }',
            "MISSING_REQUIRED_FIELD",
            "email",
        ),
        ('mutation { insert_customers_one(object: {email: "not-an-email"}) { id } }', "VALIDATION_ERROR", "email"),
        ('mutation { insert_customers_one(object: {email: "ada@acme.test"}) { id } }', "RESOURCE_ALREADY_EXISTS", None),
        (
            'mutation { insert_customers_one(object: {email: "n@acme.test", first_name: "a\\u0000b"}) { id } }',
            "VALIDATION_ERROR",
            "first_name",
        ),
        (
            'mutation { insert_customers_one(object: {email: "m@acme.test", metadata: [1]}) { id } }',
            "VALIDATION_ERROR",
            "metadata",
        ),
        (
            'mutation { update_customers_by_pk(pk_columns: {id: "cus_nope"}, _set: {first_name: "X"}) { id } }',
            "RESOURCE_NOT_FOUND",
            "id",
        ),
        ('mutation { delete_customers_by_pk(id: "cus_nope") { id } }', "RESOURCE_NOT_FOUND", "id"),
        # All or nothing: the first object is valid, the second is not.
        (
            'mutation { insert_customers(objects: [{email: "ok@acme.test"}, {email: ""}]) { affected_rows } }',
            "VALIDATION_ERROR",
            "items[1]",
        ),
    ]
    for document, code, param in cases:
        errors = fails(client, document)
        assert errors[0]["extensions"]["code"] == code, (document, errors)
        if param:
            assert errors[0]["extensions"]["param"] == param, (document, errors)
        assert errors[0]["path"]
    # Several fields in one operation: the second fails, so the first is undone too.
    errors = fails(
        client,
        """mutation($id: String!) {
             a: insert_customers_one(object: {email: "first@acme.test"}) { id }
             b: update_customers_by_pk(pk_columns: {id: $id}, _set: {email: "bob@acme.test"}) { id } }""",
        id=acme["ada"].pk,
    )
    assert errors[0]["extensions"]["code"] == "RESOURCE_ALREADY_EXISTS" and errors[0]["path"] == ["b"]
    assert snapshot() == before


def test_another_organizations_rows_cannot_be_touched(connect, secret_key, acme):
    client = connect(secret_key)
    globex = acme["globex"].pk
    before = snapshot()
    for document in (
        'mutation($id: String!) { update_customers_by_pk(pk_columns: {id: $id}, _set: {first_name: "X"}) { id } }',
        "mutation($id: String!) { delete_customers_by_pk(id: $id) { id } }",
        "mutation($id: String!) { suspend_customer(id: $id) { id } }",
    ):
        assert fails(client, document, id=globex)[0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"
    for document in (
        'mutation($id: String!) { update_customers(where: {id: {_eq: $id}}, _set: {first_name: "X"}) { affected_rows } }',
        "mutation($id: String!) { delete_customers(where: {id: {_eq: $id}}) { affected_rows } }",
    ):
        assert list(run(client, document, id=globex).values()) == [{"affected_rows": 0}]
    assert snapshot() == before
    # An insert lands in the caller's organization, whatever it names.
    created = run(client, 'mutation { insert_customers_one(object: {email: "gus@globex.test"}) { id } }')
    assert Customer.objects.get(pk=created["insert_customers_one"]["id"]).organization_id == acme["ada"].organization_id


def test_a_user_updates_only_its_own_rows_and_a_read_key_cannot_write(connect, organization, acme):
    user = connect(make_jwt(organization, user_id="user-1"))
    mine = run(
        user,
        'mutation { update_customers(where: {}, _set: {first_name: "Mine"}) { affected_rows returning { email } } }',
    )
    assert mine["update_customers"] == {"affected_rows": 1, "returning": [{"email": "ada@acme.test"}]}
    errors = fails(
        user,
        'mutation($id: String!) { update_customers_by_pk(pk_columns: {id: $id}, _set: {first_name: "X"}) { id } }',
        id=acme["bob"].pk,
    )
    assert errors[0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"
    assert Customer.objects.get(pk=acme["bob"].pk).first_name == "Bob"

    restricted = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:read"])[1]
    client = connect(restricted)
    before = snapshot()
    for document in (
        'mutation { insert_customers_one(object: {email: "r@acme.test"}) { id } }',
        'mutation { update_customers(where: {}, _set: {first_name: "R"}) { affected_rows } }',
        "mutation { delete_customers(where: {}) { affected_rows } }",
        "mutation($id: String!) { suspend_customer(id: $id) { id } }",
    ):
        variables = {"id": acme["ada"].pk} if "$id" in document else {}
        errors = fails(client, document, **variables)
        # Not in the key's schema at all (per-role schemas): refused before anything runs.
        assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", (document, errors)
    assert snapshot() == before


def test_an_idempotency_key_replays_a_mutation(live_server, secret_key, organization):
    body = {"query": 'mutation { insert_customers_one(object: {email: "once@acme.test"}) { id email } }'}
    headers = {"Authorization": f"Bearer {secret_key}", "Idempotency-Key": "gql-once"}
    first = requests.post(f"{live_server.url}/graphql", json=body, headers=headers, timeout=10)
    second = requests.post(f"{live_server.url}/graphql", json=body, headers=headers, timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() and "errors" not in first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert Customer.objects.filter(organization=organization, email="once@acme.test").count() == 1
    assert (
        Event.objects.filter(
            type="customer.created", object_id=first.json()["data"]["insert_customers_one"]["id"]
        ).count()
        == 1
    )
    # The same key with another document is refused, as REST refuses another body.
    other = requests.post(
        f"{live_server.url}/graphql",
        json={"query": "mutation { delete_customers(where: {}) { affected_rows } }"},
        headers=headers,
        timeout=10,
    )
    assert other.status_code == 400 and other.json()["errors"][0]["extensions"]["code"] == "idempotency_error"
    assert Customer.objects.filter(organization=organization).count() == 1


def test_webhook_endpoint_actions(connect, secret_key, organization):
    endpoint, _secret = webhook_endpoint_create(
        organization=organization,
        actor=Actor.system(organization),
        data={"url": "https://hooks.example.com/in", "events": ["customer.created"]},
    )
    client = connect(secret_key)
    data = run(client, "mutation($id: String!) { disable_webhook_endpoint(id: $id) { id status } }", id=endpoint.pk)
    assert data["disable_webhook_endpoint"]["id"] == endpoint.pk
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).status == data["disable_webhook_endpoint"]["status"] != "enabled"
    # An action answering something else than its object (here the new secret, declared with
    # @answers) stays REST's: not in the schema, nothing done.
    before = WebhookEndpoint.objects.filter(pk=endpoint.pk).values("secret").get()
    errors = fails(client, "mutation($id: String!) { rotate_secret_webhook_endpoint(id: $id) { id } }", id=endpoint.pk)
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).values("secret").get() == before
