"""GraphQL mutation inputs (apps/graphql/mutations.py): Hasura's nested inserts where the service
takes them, and input types holding only the fields the policy table lets the role write."""

import pytest
import requests
from graphql import OperationType
from rest_framework import serializers

from apps.accounts.models import AuditLog
from apps.core import policy
from apps.core.context import Actor
from apps.core.serializers import ResourceSerializer
from apps.core.views import ResourceViewSet
from apps.crm.api.views import CustomerViewSet
from apps.crm.models import Customer, CustomerAddress
from apps.crm.serializers import AddressSerializer
from apps.events.models import Event
from apps.graphql.execution import Context, execute_operation
from apps.graphql.schema import SchemaBuilder
from apps.graphql.tables import discover
from tests import test_graphql as base
from tests.test_graphql_mutations import snapshot

connect = base.connect
_jwt_secret = base._jwt_secret
fails, make_customer, make_jwt, run = base.fails, base.make_customer, base.make_jwt, base.run

pytestmark = pytest.mark.django_db

ADDRESS = {"address_line_1": "1 Main St", "city": "Lyon", "country_code": "FR"}


def input_fields(client, type_name):
    data = run(client, "query($n: String!) { __type(name: $n) { inputFields { name } } }", n=type_name)
    return None if data["__type"] is None else {field["name"] for field in data["__type"]["inputFields"]}


@pytest.mark.live
def test_nested_inserts_of_an_array_relationship_go_through_the_parents_service(connect, secret_key, organization):
    client = connect(secret_key)
    # What the schema offers: the relationship, wrapped as Hasura wraps it, with the address's fields.
    assert "addresses" in input_fields(client, "customers_insert_input")
    assert input_fields(client, "customer_addresses_arr_rel_insert_input") == {"data"}
    assert "customer" not in input_fields(client, "customer_addresses_insert_input")
    assert "customer_id" not in input_fields(client, "customer_addresses_insert_input")

    data = run(
        client,
        """mutation($objects: [customers_insert_input!]!) {
             insert_customers(objects: $objects) {
               affected_rows
               returning { email default_shipping_address addresses(order_by: {city: asc}) { id city country_code is_default_shipping } }
             } }""",
        objects=[
            {"email": "n1@acme.test", "addresses": {"data": [ADDRESS, {**ADDRESS, "city": "Nice", "is_default_shipping": True}]}},
            {"email": "n2@acme.test", "addresses": {"data": []}},
            {"email": "n3@acme.test"},
        ],
    )["insert_customers"]
    assert data["affected_rows"] == 3
    first = data["returning"][0]
    assert [(a["city"], a["is_default_shipping"]) for a in first["addresses"]] == [("Lyon", False), ("Nice", True)]
    assert first["default_shipping_address"] == first["addresses"][1]["id"]
    assert [len(row["addresses"]) for row in data["returning"][1:]] == [0, 0]
    # Written by customer_create: the addresses are the customer's, of its organization, and in
    # the customer.created event's payload and the audit row.
    customer = Customer.objects.get(email="n1@acme.test")
    assert set(customer.addresses.values_list("organization_id", flat=True)) == {organization.id}
    event = Event.objects.get(type="customer.created", object_id=customer.pk)
    assert sorted(a["city"] for a in event.data["object"]["addresses"]) == ["Lyon", "Nice"]
    assert AuditLog.objects.filter(object_id=customer.pk).exists()

    # A bad nested row fails the whole mutation with the serializer's error; nothing is written.
    before = snapshot()
    errors = fails(
        client,
        """mutation { insert_customers_one(object: {email: "bad@acme.test",
             addresses: {data: [{address_line_1: "1", city: "X", country_code: "FRA"}]}}) { id } }""",
    )
    assert errors[0]["extensions"]["code"] == "VALIDATION_ERROR"
    assert errors[0]["extensions"]["param"] == "addresses.0.country_code"
    assert snapshot() == before

    # `_set` replaces the whole list (as a REST PATCH of `addresses` does).
    updated = run(
        client,
        """mutation($id: String!) { update_customers_by_pk(pk_columns: {id: $id},
             _set: {addresses: [{address_line_1: "2 Rue", city: "Metz", country_code: "fr"}]}) { addresses { city country_code } } }""",
        id=customer.pk,
    )
    assert updated["update_customers_by_pk"]["addresses"] == [{"city": "Metz", "country_code": "FR"}]
    assert list(customer.addresses.values_list("city", flat=True)) == ["Metz"]


@pytest.mark.live
def test_a_nested_insert_is_replayed_by_its_idempotency_key(live_server, secret_key, organization):
    body = {
        "query": """mutation { insert_customers_one(object: {email: "once@acme.test",
                      addresses: {data: [{address_line_1: "1", city: "Lyon", country_code: "FR"}]}}) { id addresses { city } } }"""
    }
    headers = {"Authorization": f"Bearer {secret_key}", "Idempotency-Key": "nested-once"}
    first = requests.post(f"{live_server.url}/graphql", json=body, headers=headers, timeout=10)
    second = requests.post(f"{live_server.url}/graphql", json=body, headers=headers, timeout=10)
    assert first.json() == second.json() and "errors" not in first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert CustomerAddress.objects.filter(organization=organization).count() == 1


@pytest.fixture
def narrow_policy(monkeypatch):
    """The `user` role may create customers with an email and a first name only, update only the
    first name, and only read addresses: the policy table's writable fields and operations."""
    own = policy.Rule(rows="own")
    monkeypatch.setitem(
        policy.POLICIES,
        "crm.Customer",
        policy.Policy(
            scope="customers",
            roles={
                "user": {
                    "read": own,
                    "create": policy.Rule(rows="own", fields=frozenset({"email", "first_name", "addresses"})),
                    "update": policy.Rule(rows="own", fields=frozenset({"first_name"})),
                    "delete": own,
                },
                "manager": policy.FULL,
                "admin": policy.FULL,
            },
        ),
    )
    monkeypatch.setitem(
        policy.POLICIES,
        "crm.CustomerAddress",
        policy.Policy(scope="customers", roles={"user": {"read": own}, "manager": policy.FULL, "admin": policy.FULL}),
    )


@pytest.mark.live
def test_input_types_hold_only_what_the_role_may_write(connect, client, secret_key, organization, narrow_policy):
    user_jwt = make_jwt(organization, user_id="user-1")
    user = connect(user_jwt)
    # `addresses` is writable on customers, but the role may not create addresses: not offered.
    assert input_fields(user, "customers_insert_input") == {"email", "first_name"}
    assert input_fields(user, "customers_set_input") == {"first_name"}
    assert input_fields(user, "customer_addresses_arr_rel_insert_input") is None
    assert input_fields(user, "customers_inc_input") is None
    admin = connect(secret_key)
    assert {"email", "last_name", "phone", "metadata", "tags", "addresses"} <= input_fields(
        admin, "customers_insert_input"
    )

    ada = run(user, 'mutation { insert_customers_one(object: {email: "ada@acme.test", first_name: "Ada"}) { id } }')
    ada_id = ada["insert_customers_one"]["id"]
    before = snapshot()
    for document in (
        'mutation { insert_customers_one(object: {email: "x@acme.test", last_name: "X"}) { id } }',
        'mutation($id: String!) { update_customers_by_pk(pk_columns: {id: $id}, _set: {email: "y@acme.test"}) { id } }',
        'mutation { insert_customers_one(object: {email: "z@acme.test", addresses: {data: []}}) { id } }',
    ):
        errors = fails(user, document, **({"id": ada_id} if "$id" in document else {}))
        assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", (document, errors)
    assert snapshot() == before
    # REST refuses the same writes with the policy table's 403.
    rest = client.post(
        "/v1/customers",
        {"email": "x@acme.test", "last_name": "X"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {user_jwt}",
    )
    assert rest.status_code == 403 and rest.json()["code"] == "INSUFFICIENT_PERMISSIONS"
    renamed = run(
        user, 'mutation($id: String!) { update_customers_by_pk(pk_columns: {id: $id}, _set: {first_name: "Adah"}) { first_name } }', id=ada_id
    )
    assert renamed["update_customers_by_pk"] == {"first_name": "Adah"}


# Object relationships: no registered collection takes a related row's key as input yet, so a
# collection of addresses that does (as an order will take its customer) is declared here; the
# schema and the mutation are the generic ones.


def address_create(*, organization, actor, data):
    return CustomerAddress.objects.create(organization=organization, created_by=actor.actor_id, **data)


class KeyedAddressSerializer(ResourceSerializer):
    object_name = "address"
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())

    class Meta:
        model = CustomerAddress
        fields = ["id", "customer", *AddressSerializer.Meta.fields[1:]]
        read_only_fields = ["id"]


class AddressViewSet(ResourceViewSet):
    model = CustomerAddress
    serializer_class = KeyedAddressSerializer
    create_service = staticmethod(address_create)


@pytest.fixture
def keyed(organization):
    tables = discover([CustomerViewSet, AddressViewSet])
    schema = SchemaBuilder(tables).build()
    actor = Actor(organization=organization, role="admin", credential_type="api_key", api_key_kind="secret")

    def execute(document, **variables):
        context = Context(actor=actor, tables=tables)
        allowed = (OperationType.QUERY, OperationType.MUTATION)
        return execute_operation(schema, context, document, variables or None, allowed=allowed)

    return execute


def test_nested_insert_of_an_object_relationship_creates_the_row_first(keyed, organization, other_organization):
    fields = keyed('{ __type(name: "customer_addresses_insert_input") { inputFields { name } } }')
    names = {field["name"] for field in fields["data"]["__type"]["inputFields"]}
    # The key under the column's name, the relationship beside it.
    assert {"customer_id", "customer", "city"} <= names and "addresses" not in names
    # The addresses nested in a customer are written by the customer's serializer: their own type.
    nested = keyed('{ __type(name: "customers_addresses_insert_input") { inputFields { name } } }')
    assert "customer" not in {field["name"] for field in nested["data"]["__type"]["inputFields"]}

    created = keyed(
        """mutation($object: customer_addresses_insert_input!) {
             insert_customer_addresses_one(object: $object) { city customer { email first_name } } }""",
        object={**ADDRESS, "customer": {"data": {"email": "new@acme.test", "first_name": "New"}}},
    )
    assert created == {
        "data": {"insert_customer_addresses_one": {"city": "Lyon", "customer": {"email": "new@acme.test", "first_name": "New"}}}
    }
    # The customer went through customer_create: its event is there.
    customer = Customer.objects.get(organization=organization, email="new@acme.test")
    assert Event.objects.filter(type="customer.created", object_id=customer.pk).exists()

    # insert_<t> with several objects, one by key and one by nested row.
    many = keyed(
        """mutation($objects: [customer_addresses_insert_input!]!) {
             insert_customer_addresses(objects: $objects) { affected_rows returning { customer { email } } } }""",
        objects=[
            {**ADDRESS, "customer_id": customer.pk},
            {**ADDRESS, "customer": {"data": {"email": "other@acme.test"}}},
        ],
    )
    assert [row["customer"]["email"] for row in many["data"]["insert_customer_addresses"]["returning"]] == [
        "new@acme.test",
        "other@acme.test",
    ]

    globex = make_customer(other_organization, "gus@globex.test")
    before = snapshot()
    for variables, code in (
        # Both the key and the row: refused.
        ({**ADDRESS, "customer_id": customer.pk, "customer": {"data": {"email": "x@acme.test"}}}, "VALIDATION_ERROR"),
        # Another organization's key is not a customer this caller can name (scoped serializer).
        ({**ADDRESS, "customer_id": globex.pk}, "VALIDATION_ERROR"),
        # The nested customer is invalid: nothing is created, not even the address.
        ({**ADDRESS, "customer": {"data": {"email": "not-an-email"}}}, "VALIDATION_ERROR"),
        # The nested customer is fine but the address is not: the customer is undone too.
        ({**ADDRESS, "country_code": "FRA", "customer": {"data": {"email": "undone@acme.test"}}}, "VALIDATION_ERROR"),
    ):
        result = keyed(
            "mutation($o: customer_addresses_insert_input!) { insert_customer_addresses_one(object: $o) { id } }",
            o=variables,
        )
        assert result["data"] is None and result["errors"][0]["extensions"]["code"] == code, result
    assert snapshot() == before


def test_a_null_nested_value_is_judged_by_the_serializer(keyed, organization):
    before = snapshot()
    for document, code in (
        ('mutation { insert_customers_one(object: {email: "n@acme.test", addresses: null}) { id } }', "VALIDATION_ERROR"),
        (
            'mutation { insert_customer_addresses_one(object: {address_line_1: "1", city: "X", country_code: "FR", customer: null}) { id } }',
            "MISSING_REQUIRED_FIELD",
        ),
    ):
        result = keyed(document)
        assert result["data"] is None and result["errors"][0]["extensions"]["code"] == code, result
    assert snapshot() == before
