"""Every root field of the GraphQL schema, generated from the schema and the policy table (a table
added later is covered with no change here), through the real `gql` client against a live server:

- cross-tenant: every query root field and every mutation root field, run by Acme's admin against
  Globex's rows (made through REST by each collection's ResourceKit `make`), never reaches them;
- roles: for every table and every role (anonymous, a publishable key, `user`, `manager` and
  `admin` JWTs, a secret key, and restricted keys with each scope's `read` and `write`), the
  role's schema has exactly the root fields the policy table grants it, and a readable table
  answers exactly the rows the role's row filter admits, read from the database.
"""

from types import SimpleNamespace

import pytest
from graphql import get_named_type

import tests.test_resource_kit as kits  # noqa: F401 - loads the ResourceKit classes (module, not names)
from apps.accounts.services import api_key_create
from apps.core import policy
from apps.core.testing import kit_classes
from apps.graphql.schema import get_schema, table_operations
from apps.graphql.tables import all_tables
from tests import test_graphql as base

connect = base.connect
_jwt_secret = base._jwt_secret
fails, make_jwt, run = base.fails, base.make_jwt, base.run

pytestmark = [pytest.mark.django_db, pytest.mark.live]


@pytest.fixture(autouse=True)
def _webhooks_in_this_thread(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    # The rows include webhook endpoints: their deliveries run in this thread (Celery is eager in
    # tests), not in the embedded scheduler's threads, which would write beside the live server.
    settings.WEBHOOK_DELIVERY_BACKEND = "celery"


def _kits(request):
    """{collection: a ResourceKit instance able to make rows} for every registered collection."""
    made = {}
    for cls in kit_classes():
        kit = cls()
        kit.request = request
        made[cls.collection] = kit
    return made


@pytest.fixture
def rows(request, api_client, other_client, organization, other_organization):
    """Rows of every table in both organizations, made through REST."""
    kits_by_collection = _kits(request)
    for table in all_tables().values():
        if table.viewset is not None:
            for api in (api_client, other_client):
                kits_by_collection[table.viewset.collection].made(api, 1)
    made = {}
    for table in all_tables().values():
        # One row of each table is the `user` JWT's own (its row filter must find exactly it).
        if any(field.name == "created_by" for field in table.model._meta.concrete_fields):
            first = table.model._default_manager.filter(organization=organization).order_by("pk")[:1]
            table.model._default_manager.filter(pk__in=list(first.values_list("pk", flat=True))).update(created_by="user-1")
        own = list(table.model._default_manager.filter(organization=organization).values_list("pk", flat=True))
        other = list(table.model._default_manager.filter(organization=other_organization).values_list("pk", flat=True))
        assert other, f"no {table.name} row of the other organization: give its kit a make() that makes one"
        made[table.name] = SimpleNamespace(own=own, other=other, kit=kits_by_collection.get(getattr(table.viewset, "collection", None)))
    return made


def _selection(field):
    """A selection for a root field's type: the id, or affected_rows and the returning ids."""
    named = get_named_type(field.type)
    if "affected_rows" in named.fields:
        return "{ affected_rows returning { id } }"
    if "aggregate" in named.fields:
        return "{ aggregate { count } nodes { id } }"
    return "{ id }"


def _table_of(field):
    """The table a root field is about, by the type it answers."""
    name = get_named_type(field.type).name.removesuffix("_mutation_response").removesuffix("_aggregate")
    return all_tables()[name]


def _root_fields(schema):
    return {**schema.query_type.fields, **schema.mutation_type.fields}


def test_no_root_field_reaches_another_organization(connect, secret_key, organization, rows):
    schema = get_schema(full=True)
    client = connect(secret_key)
    checked = set()
    for field_name, field in schema.query_type.fields.items():
        table = _table_of(field)
        other = rows[table.name].other
        selection = _selection(field)
        if field_name.endswith("_by_pk"):
            data = run(client, f"query($id: String!) {{ r: {field_name}(id: $id) {selection} }}", id=other[0])
            assert data["r"] is None, field_name
        elif field_name.endswith("_aggregate"):
            data = run(client, f"{{ r: {field_name} {selection} }}")
            assert data["r"]["aggregate"]["count"] == len(rows[table.name].own), field_name
            assert not {node["id"] for node in data["r"]["nodes"]} & set(other), field_name
        else:
            data = run(client, f"{{ r: {field_name} {selection} }}")
            assert {row["id"] for row in data["r"]} == set(rows[table.name].own), field_name
        checked.add(field_name)

    for field_name, field in schema.mutation_type.fields.items():
        table = _table_of(field)
        other_id = rows[table.name].other[0]
        before = list(table.model._default_manager.filter(pk=other_id).values())
        selection = _selection(field)
        if field_name.startswith("insert_"):
            body = rows[table.name].kit.body()
            argument = "objects: [$o]" if not field_name.endswith("_one") else "object: $o"
            data = run(client, f"mutation($o: {table.name}_insert_input!) {{ r: {field_name}({argument}) {selection} }}", o=body)
            created = data["r"]["returning"][0]["id"] if "returning" in data["r"] else data["r"]["id"]
            # An insert lands in the caller's organization, whatever the body says.
            assert table.model._default_manager.get(pk=created).organization_id == organization.id, field_name
        elif field_name.endswith("_by_pk") or "id" in field.args:
            arguments = "pk_columns: {id: $id}, _set: {}" if field_name.startswith("update_") else "id: $id"
            errors = fails(client, f"mutation($id: String!) {{ r: {field_name}({arguments}) {selection} }}", id=other_id)
            assert errors[0]["extensions"]["code"] == "RESOURCE_NOT_FOUND", (field_name, errors)
        else:
            arguments = "where: {id: {_eq: $id}}" + (", _set: {}" if field_name.startswith("update_") else "")
            data = run(client, f"mutation($id: String!) {{ r: {field_name}({arguments}) {selection} }}", id=other_id)
            assert data["r"] == {"affected_rows": 0, "returning": []}, field_name
        assert list(table.model._default_manager.filter(pk=other_id).values()) == before, field_name
        checked.add(field_name)
    assert checked == set(_root_fields(schema))


def _credentials(organization):
    """(label, credential, policy actor) for every role and key kind; scopes from the policy table."""
    found = [
        ("anonymous", None, None),
        ("publishable", api_key_create(organization=organization, kind="publishable", mode="live")[1], ("anonymous", "publishable", ())),
        ("secret", api_key_create(organization=organization, kind="secret", mode="live")[1], ("admin", "secret", ())),
    ]
    for role in ("user", "manager", "admin"):
        found.append((f"{role} jwt", make_jwt(organization, user_id="user-1", role=role), (role, "", ())))
    for scope in sorted({row.scope for row in policy.POLICIES.values()}):
        for verb in ("read", "write"):
            scopes = [f"{scope}:{verb}"]
            key = api_key_create(organization=organization, kind="restricted", mode="live", scopes=scopes)[1]
            found.append((f"restricted {scopes[0]}", key, ("manager", "restricted", tuple(scopes))))
    return found


def _actor(shape):
    if shape is None:
        return None
    role, kind, scopes = shape
    return SimpleNamespace(role=role, api_key_kind=kind, scopes=scopes, actor_id="user-1", organization=None)


def test_each_role_sees_and_reads_what_the_policy_table_grants(connect, organization, rows):
    full = get_schema(full=True)
    for label, credential, shape in _credentials(organization):
        client = connect(credential)
        actor = _actor(shape)
        data = run(client, "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }")["__schema"]
        offered = {f["name"] for f in data["queryType"]["fields"]} | {
            f["name"] for f in (data["mutationType"] or {}).get("fields", ())
        }
        expected = set()
        for field_name, field in _root_fields(full).items():
            table = _table_of(field)
            if not policy.allows(actor, table.label, "read"):
                continue
            operation = _operation(field_name, table)
            if operation is not None and policy.allows(actor, table.label, operation):
                expected.add(field_name)
        assert offered - {"no_queries_available"} == expected, label

        for table in all_tables().values():
            document = f"{{ {table.name} {{ id }} }}"
            if not policy.allows(actor, table.label, "read"):
                errors = fails(client, document)
                code = "MISSING_API_KEY" if shape is None or shape[0] == "anonymous" and not shape[1] else "GRAPHQL_VALIDATION_FAILED"
                assert errors[0]["extensions"]["code"] == code, (label, table.name, errors)
                continue
            rule = policy.authorize(actor, table.label, "read")
            visible = table.model._default_manager.filter(organization=organization)
            if rule.rows == "own":
                visible = visible.filter(created_by="user-1")
            answered = {row["id"] for row in run(client, document)[table.name]}
            assert answered == set(visible.values_list("pk", flat=True)), (label, table.name)


def _operation(field_name, table):
    """The policy operation a root field needs, by Hasura's naming of root fields."""
    name = table.name
    if field_name in (name, f"{name}_by_pk", f"{name}_aggregate"):
        return "read"
    for prefix, operation in (("insert_", "create"), ("update_", "update"), ("delete_", "delete")):
        if field_name in (f"{prefix}{name}", f"{prefix}{name}_by_pk", f"{prefix}{name}_one"):
            return operation
    for action in table_operations(table)[4:]:
        if field_name.startswith(f"{action}_"):
            return action
    return None
