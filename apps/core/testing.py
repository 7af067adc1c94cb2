"""The API test kit: every resource gets the convention checks by declaring itself.

A test module opts a collection in with a few lines::

    class TestCustomers(ResourceKit):
        collection = "customers"
        valid_create = {"email": "kit{n}@example.com"}   # or def valid_create(self, n)
        update = {"first_name": "New"}

        def make(self, api, n):          # n objects through the API, as `api`'s organization
            return [self.create(api)["id"] for _ in range(n)]

and pytest collects the `test_*` methods below for that class: tenancy (another organization's
objects are 404 and untouched), sandbox/live separation, every declared filter field and operator
in every spelling, every sort field in both directions, cursor/offset/Stripe paging, expansion,
unknown parameters, idempotent replay, the hardening issue's bad input and a query count that does
not grow with the page size. Read-only collections (no `valid_create`) get the read checks only;
their `make` produces objects by side effects.

Everything goes through HTTP with the fixtures of the project's conftest (`api_client`,
`other_client`, `test_secret_key`); expectations come from the database, not from the code under
test, so a check means "the API says what the rows say".

Models are looked up through the app registry, never imported: core sits below accounts and events
in the layers, and a test helper must not be the import that breaks that.
"""

import itertools
import json
import re
from datetime import datetime

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from .filters import ALL_OPS
from .routing import load_collections

# Unique suffixes for made data (emails, names, URLs) across every call of every test.
_serial = itertools.count(1)


def registered_collections():
    """{canonical collection: viewset} as the URLconf mounts them (it mounts what
    load_collections registers; core does not import the URLconf, which is above every app)."""
    router = load_collections()
    return {prefix: viewset for prefix, viewset, _basename in router.canonical.registry}


def kit_classes():
    """Every ResourceKit subclass that names a collection, loaded so far."""
    found, pending = [], list(ResourceKit.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.collection:
            found.append(cls)
    return found


def assert_error(response, status, code, param=None):
    """The contract's error body: status, code at the top and under `error`, the request id."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["code"] == code, body
    assert body["error"]["code"] == code and body["error"]["type"] == body["type"], body
    assert body["request_id"] == response["X-Request-ID"], body
    if param is not None:
        assert body["param"] == param, body
    return body


def query_text(value):
    """A model value as a client writes it in a query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _like_matches(pattern, value, case_insensitive):
    """SQL LIKE, as the contract describes it (`%` any run, `_` one character)."""
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, str(value), re.IGNORECASE | re.DOTALL if case_insensitive else re.DOTALL) is not None


def _expected(op, value, row_value):
    """Whether a row whose field holds `row_value` passes `field_<op>=value` (value as Python).
    SQL semantics: a NULL never compares, but `ne`/`nin` (an exclusion) keep it."""
    if op == "is_null":
        return (row_value is None) == value
    if op in ("ne", "neq"):
        return row_value != value
    if op == "nin":
        return row_value not in value
    if row_value is None:
        return False
    if op == "eq":
        return row_value == value
    if op == "in":
        return row_value in value
    if op == "gt":
        return row_value > value
    if op == "gte":
        return row_value >= value
    if op == "lt":
        return row_value < value
    if op == "lte":
        return row_value <= value
    if op == "between":
        return value[0] <= row_value <= value[1]
    if op in ("like", "ilike"):
        return _like_matches(value, row_value, op == "ilike")
    raise AssertionError(f"no expectation for operator {op}")


class ResourceKit:
    """Base class of the generated checks; subclasses declare the collection (see the module)."""

    collection = None
    # A create body (dict whose strings may hold `{n}`, a unique number), or a method(n) -> dict.
    # None: the collection is read-only here (events, audit logs, jobs, deliveries).
    valid_create = None
    # A PATCH body that changes something; None when the collection has no update.
    update = None
    # Example query values per filter field, for fields whose made data holds no usable value.
    filters = {}
    # A live credential also administers the sandbox's objects (API keys): it sees them.
    live_sees_sandbox = False
    # Objects for the paging checks (limit=2 over this many) and for the query count.
    page_objects = 5
    query_count_objects = 20
    # {"test_name[param]": "why"}: a check that finds a bug reported but not fixed yet. Strict, so
    # the entry must go once the bug is fixed.
    known_bugs = {}

    # Declarations ---------------------------------------------------------------------------

    def make(self, api, n):
        """Create n objects as `api`'s organization and mode; return their ids (at least n)."""
        raise NotImplementedError(f"{type(self).__name__} must define make(api, n)")

    def visible(self, organization):
        """The rows `organization` should see in this collection (what lists are checked against)."""
        return self.model().objects.filter(organization=organization)

    # Machinery ------------------------------------------------------------------------------

    @classmethod
    def viewset(cls):
        collections = registered_collections()
        assert cls.collection in collections, f"{cls.collection!r} is not a registered collection"
        return collections[cls.collection]

    @classmethod
    def model(cls):
        return cls.viewset().queryset.model

    @classmethod
    def writable(cls):
        return cls.valid_create is not None

    @pytest.fixture(autouse=True)
    def _kit_clients(self, request, api_client, other_client, test_secret_key, organization, other_organization):
        self.request = request
        self.api = api_client
        self.other = other_client
        self.sandbox = api_client.as_key(test_secret_key)
        self.organization = organization
        self.other_organization = other_organization
        self.sandbox_organization = organization.sandbox
        reason = self.known_bugs.get(request.node.name)
        if reason:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    def pytest_generate_tests(self, metafunc):
        """One test per declared filter field, sort field and expandable field, so a failure
        names the field."""
        cls = metafunc.cls
        viewset = cls.viewset()
        choices = {
            "filter_field": sorted(viewset.filterset_class.operators()) if viewset.filterset_class else [],
            "sort_field": sorted(viewset.ordering_fields),
            "expand_field": sorted(getattr(viewset.serializer_class, "expandable_fields", {}) or {}),
        }
        for name, values in choices.items():
            if name in metafunc.fixturenames:
                if not values:
                    values = [pytest.param(None, marks=pytest.mark.skip(reason=f"{cls.collection} declares none"))]
                metafunc.parametrize(name, values)

    def fixture(self, name):
        return self.request.getfixturevalue(name)

    @property
    def path(self):
        return f"/v1/{self.collection}"

    def body(self):
        declared = self.valid_create
        if callable(declared):
            return declared(next(_serial))
        serial = next(_serial)

        def fill(value):
            if isinstance(value, str):
                return value.replace("{n}", str(serial))
            if isinstance(value, dict):
                return {key: fill(item) for key, item in value.items()}
            if isinstance(value, list):
                return [fill(item) for item in value]
            return value

        return fill(declared)

    def create(self, api, body=None):
        """POST a valid body (or `body`) and return the created representation."""
        response = api.post(self.path, self.body() if body is None else body)
        assert response.status_code == 201, response.content
        return response.json()

    def made(self, api, n):
        ids = self.make(api, n)
        assert len(ids) >= n, f"make() returned {len(ids)} ids, asked for {n}"
        return ids

    def organization_of(self, api):
        if api is self.other:
            return self.other_organization
        return self.sandbox_organization if api is self.sandbox else self.organization

    def ordered_ids(self, api, ordering=None):
        """Ids the API should list for `api`, in the order `ordering` ([(field, descending)])."""
        ordering = ordering or [self.viewset().default_ordering]
        descending = ordering[-1][1]
        # The API's order: NULL below every value (first ascending, last descending) on every database.
        keys = [
            F(field).desc(nulls_last=True) if desc else F(field).asc(nulls_first=True) for field, desc in ordering
        ] + ["-pk" if descending else "pk"]
        return list(self.visible(self.organization_of(api)).order_by(*keys).values_list("pk", flat=True))

    def get_ok(self, api, path, params=None):
        response = api.get(path, params or {})
        assert response.status_code == 200, (path, params, response.content[:500])
        return response.json()

    def listed(self, api, params=None, path=None):
        """Every object of one page of 100 (the checks stay below that)."""
        body = self.get_ok(api, path or self.path, {"limit": 100, **(params or {})})
        assert body["object"] == "list" and body["has_more"] is False, body
        return body["data"]

    def listed_ids(self, api, params=None, path=None):
        return [item["id"] for item in self.listed(api, params, path)]

    def walk(self, api, params, limit=2):
        """Every id of a cursor walk, page by page."""
        seen, cursor = [], None
        for _ in range(1000):
            body = self.get_ok(api, self.path, {**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
            assert len(body["data"]) <= limit
            seen.extend(item["id"] for item in body["data"])
            cursor = body["next_cursor"]
            if not body["has_more"]:
                assert cursor is None, body
                return seen
            assert cursor, body
        raise AssertionError("the cursor walk never ended")

    def detail_routes(self):
        """(method, path suffix) of every route on one object: retrieve, update, delete, actions."""
        viewset = self.viewset()
        routes = [("get", "")]
        if hasattr(viewset, "partial_update"):
            routes += [("patch", ""), ("put", "")]
        if hasattr(viewset, "destroy"):
            routes.append(("delete", ""))
        for extra in viewset.get_extra_actions():
            if extra.detail:
                routes.extend((method, "/" + extra.url_path) for method in sorted(extra.mapping))
        return routes

    def snapshot(self):
        """The collection's rows in full and the number of rows of every table: what "nothing
        changed" compares."""
        rows = list(self.model().objects.order_by("pk").values())
        counts = {model._meta.label: model._default_manager.count() for model in django_apps.get_models()}
        return rows, counts

    def search_query(self, object_id):
        """A search query that matches the object (its first search field's value), or None."""
        fields = self.viewset().search_fields
        if not fields:
            return None
        value = self.model().objects.filter(pk=object_id).values_list(fields[0], flat=True).first()
        return str(value) if value not in (None, "") else None

    def assert_unreachable(self, api, ids):
        """Every route on each object is a 404 for `api`, and no row anywhere changed."""
        self.get_ok(api, self.path, {"limit": 1})  # a credential's first use records itself: not a change
        before = self.snapshot()
        for object_id in ids:
            for method, suffix in self.detail_routes():
                path = f"{self.path}/{object_id}{suffix}"
                if method in ("patch", "put"):
                    response = getattr(api, method)(path, self.update or {})
                elif method == "post":
                    response = api.post(path, {})
                else:
                    response = getattr(api, method)(path)
                assert_error(response, 404, "RESOURCE_NOT_FOUND")
        assert self.snapshot() == before

    def assert_absent(self, api, ids, owner):
        """None of `ids` is in `api`'s list or search, even searching for what they hold."""
        ids = set(ids)
        assert not ids & set(self.listed_ids(api))
        assert not ids & set(self.listed_ids(api, path=f"{self.path}/search"))
        for object_id in sorted(ids)[:2]:
            query = self.search_query(object_id)
            if query is None:
                continue
            # The owner finds it by this query, so its absence below means something.
            assert object_id in self.listed_ids(owner, {"query": query}, path=f"{self.path}/search")
            assert object_id not in self.listed_ids(api, {"query": query}, path=f"{self.path}/search")

    # Tenancy --------------------------------------------------------------------------------

    def test_another_organizations_objects_are_404_and_unchanged(self):
        theirs = self.made(self.other, 2)
        self.assert_unreachable(self.api, theirs)
        # Their owner still reaches them: the 404s above are about tenancy, not broken routes.
        for object_id in theirs:
            assert self.get_ok(self.other, f"{self.path}/{object_id}")["id"] == object_id

    def test_another_organizations_objects_are_absent_from_list_and_search(self):
        theirs = self.made(self.other, 2)
        self.made(self.api, 1)
        self.assert_absent(self.api, theirs, owner=self.other)
        # Nor are they an anchor for our pages.
        assert_error(self.api.get(self.path, {"starting_after": theirs[0]}), 404, "RESOURCE_NOT_FOUND")

    # Sandbox and live -----------------------------------------------------------------------

    def test_sandbox_and_live_do_not_see_each_other(self):
        live = self.made(self.api, 2)
        test = self.made(self.sandbox, 2)
        assert all("_test_" in object_id for object_id in test), test
        assert not any("_test_" in object_id for object_id in live), live
        self.assert_unreachable(self.sandbox, live)
        self.assert_absent(self.sandbox, live, owner=self.api)
        if self.live_sees_sandbox:
            assert set(test) <= set(self.listed_ids(self.api))
        else:
            self.assert_unreachable(self.api, test)
            self.assert_absent(self.api, test, owner=self.sandbox)

    def test_livemode_matches_the_mode_of_the_id(self):
        self.made(self.api, 1)
        self.made(self.sandbox, 1)
        for api, mode in ((self.api, True), (self.sandbox, False)):
            items = self.listed(api)
            assert items
            for item in items:
                assert item.get("livemode") is ("_test_" not in item["id"]), item
                if not self.live_sees_sandbox:
                    assert item["livemode"] is mode, item
                one = self.get_ok(api, f"{self.path}/{item['id']}")
                assert one.get("livemode") is item["livemode"], one

    # Reads ----------------------------------------------------------------------------------

    def test_retrieve_is_the_listed_representation_and_a_missing_id_is_404(self):
        ids = self.made(self.api, 2)
        listed = {item["id"]: item for item in self.listed(self.api)}
        for object_id in ids:
            assert self.get_ok(self.api, f"{self.path}/{object_id}") == listed[object_id]
        body = assert_error(self.api.get(f"{self.path}/kit_missing_0"), 404, "RESOURCE_NOT_FOUND")
        assert "kit_missing_0" in body["message"]

    def test_filter(self, filter_field):
        """Each operator of the field in each spelling is accepted and returns exactly the rows
        whose value passes it; an operator the field does not declare is a 400."""
        self.made(self.api, self.page_objects)
        operators = self.viewset().filterset_class.operators()[filter_field]
        model_field = self.model()._meta.get_field(filter_field)
        rows = list(self.visible(self.organization).values_list("pk", model_field.attname))
        # An empty value is a 400 by contract (`email=`), so only non-blank values are examples.
        present = sorted(
            {value for _, value in rows if value is not None and query_text(value).strip()}, key=query_text
        )
        for op in operators:
            value, text = self._filter_value(filter_field, op, present)
            expected = {pk for pk, row_value in rows if _expected(op, value, row_value)}
            spellings = [f"{filter_field}_{op}", f"{filter_field}[{op}]", f"{filter_field}__{op}"]
            if op == "eq":
                spellings.append(filter_field)
            for spelling in spellings:
                got = self.listed_ids(self.api, {spelling: text})
                assert set(got) == expected, (spelling, text, sorted(got), sorted(expected))
        undeclared = [op for op in ALL_OPS if op not in operators]
        if undeclared:
            key = f"{filter_field}[{undeclared[0]}]"
            assert_error(
                self.api.get(self.path, {key: query_text(present[0]) if present else "x"}), 400, "parameter_unknown"
            )

    def _filter_value(self, field, op, present):
        """(value as Python, value as query text) for `field_<op>`: taken from the made rows where
        they hold one, else from the class's `filters` example."""
        if op == "is_null":
            return True, "true"
        if not present:
            example = self.filters.get(field)
            assert example is not None, f"no made row has a {field}: declare filters = {{{field!r}: ...}}"
            present = [example]
        first, last = present[0], present[-1]
        if op in ("in", "nin"):
            chosen = present[:2]
            return chosen, ",".join(query_text(v) for v in chosen)
        if op == "between":
            low, high = min(first, last), max(first, last)
            return (low, high), f"{query_text(low)},{query_text(high)}"
        if op in ("like", "ilike"):
            text = query_text(first)
            pattern = text[: max(1, len(text) // 2)] + "%"
            pattern = pattern.upper() if op == "ilike" else pattern
            return pattern, pattern
        if op in ("gt", "gte", "lt", "lte"):
            middle = present[len(present) // 2]
            return middle, query_text(middle)
        return first, query_text(first)

    def test_unknown_parameters_are_400(self):
        ids = self.made(self.api, 1)
        for path in (self.path, f"{self.path}/search", f"{self.path}/{ids[0]}"):
            assert_error(self.api.get(path, {"kit_colour": "red"}), 400, "parameter_unknown", param="kit_colour")
        assert_error(self.api.get(self.path, {"kit_field[eq]": "x"}), 400, "parameter_unknown")

    def test_sort(self, sort_field):
        """Both directions, a whole page and a cursor walk, in the database's order."""
        self.made(self.api, self.page_objects)
        for descending in (False, True):
            expected = self.ordered_ids(self.api, [(sort_field, descending)])
            sort = ("-" if descending else "") + sort_field
            assert self.listed_ids(self.api, {"sort": sort}) == expected, sort
            assert self.walk(self.api, {"sort": sort}) == expected, sort

    def test_cursor_pages_walk_everything_once(self):
        self.made(self.api, self.page_objects)
        expected = self.ordered_ids(self.api)
        assert len(expected) >= self.page_objects
        assert self.walk(self.api, {}) == expected

    def test_offset_and_page(self):
        self.made(self.api, self.page_objects)
        expected = self.ordered_ids(self.api)
        body = self.get_ok(self.api, self.path, {"limit": 2, "offset": 2})
        assert [item["id"] for item in body["data"]] == expected[2:4]
        assert body["has_more"] is (len(expected) > 4)
        body = self.get_ok(self.api, self.path, {"limit": 2, "page": 2})
        assert [item["id"] for item in body["data"]] == expected[2:4]

    def test_starting_after_and_ending_before(self):
        self.made(self.api, self.page_objects)
        expected = self.ordered_ids(self.api)
        body = self.get_ok(self.api, self.path, {"limit": 2, "starting_after": expected[0]})
        assert [item["id"] for item in body["data"]] == expected[1:3]
        body = self.get_ok(self.api, self.path, {"limit": 2, "ending_before": expected[3]})
        assert [item["id"] for item in body["data"]] == expected[1:3]
        assert_error(self.api.get(self.path, {"starting_after": "kit_missing_0"}), 404, "RESOURCE_NOT_FOUND")

    def test_total_count_only_on_request(self):
        self.made(self.api, 3)
        assert "total_count" not in self.get_ok(self.api, self.path, {"limit": 1})
        body = self.get_ok(self.api, self.path, {"limit": 1, "include_total": "true"})
        assert body["total_count"] == len(self.ordered_ids(self.api))

    def test_expand(self, expand_field):
        """Expanded, the field is the object whose id it held; on retrieve and on the list."""
        ids = self.made(self.api, 2)
        plain = {item["id"]: item[expand_field] for item in self.listed(self.api)}
        assert any(plain[object_id] is not None for object_id in ids), f"make() leaves {expand_field} empty"
        for params in ({"expand": expand_field}, {"expand[]": expand_field}):
            expanded = {item["id"]: item[expand_field] for item in self.listed(self.api, params)}
            for object_id in ids:
                one = self.get_ok(self.api, f"{self.path}/{object_id}", params)[expand_field]
                for value in (one, expanded[object_id]):
                    if plain[object_id] is None:
                        assert value is None
                    else:
                        assert isinstance(value, dict) and value["id"] == plain[object_id], value
                        assert "object" in value, value
        assert_error(self.api.get(self.path, {"expand": "kit_nothing"}), 400, "INVALID_FIELD_FORMAT")

    def test_malformed_list_parameters_are_400(self):
        self.made(self.api, 1)
        for path in (self.path, f"{self.path}/search"):
            for params, param in (({"limit": ""}, "limit"), ({"sort": ",,"}, "sort"), ({"limit": "101"}, "limit")):
                assert_error(self.api.get(path, params), 400, "INVALID_FIELD_FORMAT", param=param)

    def test_json_nested_too_deep_is_400(self):
        deep = '{"kit": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
        response = self.api.client.generic(
            "GET", self.path, deep, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {self.api.key}"
        )
        assert_error(response, 400, "BAD_REQUEST")

    def test_query_count_does_not_grow_with_the_page(self):
        self.made(self.api, self.query_count_objects)
        expand = sorted(getattr(self.viewset().serializer_class, "expandable_fields", {}) or {})
        variants = [{}, {"sort": self.viewset().ordering_fields[0]}]
        if expand:
            variants.append({"expand": ",".join(expand)})
        for path in (self.path, f"{self.path}/search"):
            for params in variants:
                self.get_ok(self.api, path, {"limit": 1})  # the credential's last use is written once
                counts = []
                for limit in (1, self.query_count_objects):
                    with CaptureQueriesContext(connection) as captured:
                        body = self.get_ok(self.api, path, {**params, "limit": limit})
                    assert len(body["data"]) == limit
                    counts.append([query["sql"] for query in captured.captured_queries])
                assert len(counts[0]) == len(counts[1]), (path, params, *("\n".join(c) for c in counts))

    # Writes (collections with `valid_create`) -------------------------------------------------

    def _writes(self):
        if not self.writable():
            pytest.skip(f"{self.collection} is read-only through the API")

    def count(self):
        return self.visible(self.organization).count()

    def test_create_answers_201_with_the_object(self):
        self._writes()
        before = self.count()
        created = self.create(self.api)
        assert created["id"] and created.get("object") and created["livemode"] is True
        assert self.count() == before + 1
        assert self.get_ok(self.api, f"{self.path}/{created['id']}")["id"] == created["id"]

    def test_update_by_the_owner(self):
        self._writes()
        if self.update is None:
            pytest.skip(f"{self.collection} has no update")
        object_id = self.made(self.api, 1)[0]
        for method in ("patch", "put"):
            response = getattr(self.api, method)(f"{self.path}/{object_id}", self.update)
            assert response.status_code == 200, response.content
            for key, value in self.update.items():
                assert response.json()[key] == value, (key, response.json())

    def test_unknown_body_field_is_400_and_creates_nothing(self):
        self._writes()
        before = self.count()
        response = self.api.post(self.path, {**self.body(), "kit_colour": "red"})
        assert_error(response, 400, "parameter_unknown", param="kit_colour")
        if self.update is not None:
            object_id = self.made(self.api, 1)[0]
            before = self.count()
            snapshot = self.snapshot()
            response = self.api.patch(f"{self.path}/{object_id}", {**self.update, "kit_colour": "red"})
            assert_error(response, 400, "parameter_unknown", param="kit_colour")
            assert self.snapshot() == snapshot
        assert self.count() == before

    def test_idempotent_replay_creates_once(self):
        self._writes()
        before = self.count()
        body = self.body()
        headers = {"Idempotency-Key": f"kit-{self.collection}-{next(_serial)}"}
        first = self.api.post(self.path, body, headers=headers)
        second = self.api.post(self.path, body, headers=headers)
        assert first.status_code == second.status_code == 201, (first.content, second.content)
        assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
        assert second.json() == first.json()
        assert self.count() == before + 1
        assert_error(self.api.post(self.path, self.body(), headers=headers), 400, "idempotency_error")

    def test_nul_in_a_string_field_is_422_naming_it(self):
        self._writes()
        before = self.count()
        body = self.body()
        fields = [key for key, value in body.items() if isinstance(value, str)]
        assert fields, "valid_create has no string field to try"
        for field in fields:
            raw = json.dumps({**body, field: body[field] + "\x00"})
            response = self.api.client.post(
                self.path, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {self.api.key}"
            )
            assert_error(response, 422, "INVALID_FIELD_FORMAT", param=field)
        assert self.count() == before
        strings = {key: value for key, value in (self.update or {}).items() if isinstance(value, str)}
        if strings:
            object_id = self.made(self.api, 1)[0]
            snapshot = self.snapshot()
            for field, value in strings.items():
                response = self.api.client.patch(
                    f"{self.path}/{object_id}",
                    json.dumps({field: value + "\x00"}),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {self.api.key}",
                )
                assert_error(response, 422, "INVALID_FIELD_FORMAT", param=field)
            assert self.snapshot() == snapshot

    def test_body_nested_too_deep_is_400_and_creates_nothing(self):
        self._writes()
        before = self.count()
        raw = json.dumps(self.body())[:-1] + ', "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
        response = self.api.client.post(
            self.path, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {self.api.key}"
        )
        assert_error(response, 400, "BAD_REQUEST")
        assert self.count() == before
