"""Query budgets: a page of 100 customers (two addresses each) costs the same number of queries
as a page of 1, with or without `expand`, for list, search and retrieve. The numbers are pinned
so that a regression (an N+1, an extra COUNT, a lost prefetch) shows up here.

Per request, once the credential's last use was recorded (a warm-up request does that):
1. the API key with its organization and sandbox (authentication),
2. the page (limit + 1 rows), or the one object,
3. the addresses of the rows on it (one prefetch).
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.crm.models import Customer, CustomerAddress

MANY = 101  # one more than the largest page, so both pages have more after them

LIST_QUERIES = 3
RETRIEVE_QUERIES = 3


@pytest.fixture
def customers(organization, other_organization):
    """MANY customers of the organization, each with a shipping and a billing address, plus
    some of another organization that must never show up."""
    now = timezone.now()
    rows = [
        Customer(
            organization=organization,
            email=f"customer{i:03d}@example.com",
            first_name=f"First{i}",
            last_name="Queryton" if i % 2 else "Countwell",
            metadata={"i": i},
            tags=["bulk"],
        )
        for i in range(MANY)
    ]
    Customer.objects.bulk_create(rows)
    # Distinct creation times, so the default order (newest first) is well defined.
    for i, row in enumerate(rows):
        row.created_at = now - timedelta(seconds=MANY - i)
    Customer.objects.bulk_update(rows, ["created_at"])
    addresses = []
    for row in rows:
        addresses.append(
            CustomerAddress(
                organization=organization,
                customer=row,
                address_line_1="1 Ship Street",
                city="Portsmouth",
                country_code="GB",
                is_default_shipping=True,
            )
        )
        addresses.append(
            CustomerAddress(
                organization=organization,
                customer=row,
                address_line_1="2 Bill Road",
                city="Leeds",
                country_code="GB",
                is_default_billing=True,
            )
        )
    CustomerAddress.objects.bulk_create(addresses)
    foreign = Customer.objects.create(organization=other_organization, email="foreign@example.com")
    CustomerAddress.objects.create(
        organization=other_organization, customer=foreign, address_line_1="x", city="y", country_code="US"
    )
    return rows


@pytest.fixture
def warm_client(api_client):
    """The first request of a credential records its last use (one UPDATE a minute); measure after it."""
    assert api_client.get("/v1/customers", {"limit": 1}).status_code == 200
    return api_client


def measure(client, path, params=None):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params or {})
    assert response.status_code == 200, response.content
    return response.json(), [q["sql"] for q in captured.captured_queries]


def show(queries):
    return "\n".join(f"{n}. {sql}" for n, sql in enumerate(queries, 1))


def assert_same_cost(small, large, pinned):
    assert len(large) == len(small), f"page of 1:\n{show(small)}\n\npage of 100:\n{show(large)}"
    assert len(small) == pinned, f"expected {pinned} queries, got {len(small)}:\n{show(small)}"


def check_page(body, size, *, expanded=False):
    assert body["object"] == "list"
    assert len(body["data"]) == size
    assert body["has_more"] is True
    for customer in body["data"]:
        assert customer["email"].endswith("@example.com") and customer["email"] != "foreign@example.com"
        assert len(customer["addresses"]) == 2
        (shipping_address,) = [a for a in customer["addresses"] if a["is_default_shipping"]]
        (billing_address,) = [a for a in customer["addresses"] if a["is_default_billing"]]
        shipping = customer["default_shipping_address"]
        if expanded:
            assert shipping == {**shipping_address, "object": "address", "livemode": True}
        else:
            assert shipping == shipping_address["id"]
        assert customer["default_billing_address"] == billing_address["id"]


def test_list_page_of_100_costs_the_same_as_a_page_of_1(warm_client, customers):
    one, small = measure(warm_client, "/v1/customers", {"limit": 1})
    hundred, large = measure(warm_client, "/v1/customers", {"limit": 100})
    check_page(one, 1)
    check_page(hundred, 100)
    assert hundred["data"][0]["id"] == one["data"][0]["id"] == customers[-1].pk
    assert_same_cost(small, large, LIST_QUERIES)


def test_list_next_page_by_cursor_costs_the_same(warm_client, customers):
    first, _ = measure(warm_client, "/v1/customers", {"limit": 1})
    one, small = measure(warm_client, "/v1/customers", {"limit": 1, "cursor": first["next_cursor"]})
    hundred, large = measure(warm_client, "/v1/customers", {"limit": 99, "cursor": first["next_cursor"]})
    check_page(one, 1)
    assert len(hundred["data"]) == 99
    assert one["data"][0]["id"] == customers[-2].pk
    assert_same_cost(small, large, LIST_QUERIES)


def test_list_with_expanded_address_costs_the_same(warm_client, customers):
    params = {"expand": "default_shipping_address"}
    one, small = measure(warm_client, "/v1/customers", {**params, "limit": 1})
    hundred, large = measure(warm_client, "/v1/customers", {**params, "limit": 100})
    check_page(one, 1, expanded=True)
    check_page(hundred, 100, expanded=True)
    assert_same_cost(small, large, LIST_QUERIES)
    # Expanding adds no query over the plain list.
    _, plain = measure(warm_client, "/v1/customers", {"limit": 100})
    assert len(plain) == len(large)


def test_list_with_filter_and_sort_costs_the_same(warm_client, customers):
    params = {"last_name": "Queryton", "sort": "email"}
    one, small = measure(warm_client, "/v1/customers", {**params, "limit": 1})
    many, large = measure(warm_client, "/v1/customers", {**params, "limit": 100})
    assert len(one["data"]) == 1
    assert len(many["data"]) == MANY // 2
    assert [c["email"] for c in many["data"]] == sorted(c["email"] for c in many["data"])
    assert_same_cost(small, large, LIST_QUERIES)


def test_search_page_of_100_costs_the_same_as_a_page_of_1(warm_client, customers):
    one, small = measure(warm_client, "/v1/customers/search", {"query": "example.com", "limit": 1})
    hundred, large = measure(warm_client, "/v1/customers/search", {"query": "example.com", "limit": 100})
    check_page(one, 1)
    check_page(hundred, 100)
    assert_same_cost(small, large, LIST_QUERIES)

    params = {"query": "example.com", "expand": "default_shipping_address"}
    one, small = measure(warm_client, "/v1/customers/search", {**params, "limit": 1})
    hundred, large = measure(warm_client, "/v1/customers/search", {**params, "limit": 100})
    check_page(one, 1, expanded=True)
    check_page(hundred, 100, expanded=True)
    assert_same_cost(small, large, LIST_QUERIES)


def test_retrieve_costs_a_fixed_number_of_queries(warm_client, customers):
    customer = customers[7]
    body, queries = measure(warm_client, f"/v1/customers/{customer.pk}")
    assert body["id"] == customer.pk
    assert len(body["addresses"]) == 2
    assert len(queries) == RETRIEVE_QUERIES, show(queries)

    expanded, expanded_queries = measure(
        warm_client, f"/v1/customers/{customer.pk}", {"expand": "default_shipping_address"}
    )
    (shipping_address,) = [a for a in body["addresses"] if a["is_default_shipping"]]
    assert expanded["default_shipping_address"]["id"] == shipping_address["id"]
    assert len(expanded_queries) == RETRIEVE_QUERIES, show(expanded_queries)

    # Another customer, with many more addresses, costs the same.
    busy = customers[8]
    CustomerAddress.objects.bulk_create(
        [
            CustomerAddress(
                organization=busy.organization,
                customer=busy,
                address_line_1=f"{n} Lane",
                city="Bath",
                country_code="GB",
            )
            for n in range(30)
        ]
    )
    busy_body, busy_queries = measure(warm_client, f"/v1/customers/{busy.pk}", {"expand": "default_shipping_address"})
    assert len(busy_body["addresses"]) == 32
    assert len(busy_queries) == RETRIEVE_QUERIES, show(busy_queries)


def test_seed_list_form_costs_the_same(warm_client, customers):
    one, small = measure(warm_client, "/v1/customers/list", {"limit": 1})
    hundred, large = measure(warm_client, "/v1/customers/list", {"limit": 100})
    assert len(one["data"]) == 1 and len(hundred["data"]) == 100
    assert_same_cost(small, large, LIST_QUERIES)


# Events and webhook deliveries ---------------------------------------------------------------
# Events are shown as their webhook payload, from instances (EventSerializer.row_builder_opt_out):
# the key, then the page with its organization joined. Deliveries come from rows: the key, the
# page (the event's type joined), the attempts of the page's deliveries (one query).

EVENT_LIST_QUERIES = 2
DELIVERY_LIST_QUERIES = 3


@pytest.fixture
def deliveries(organization, other_organization):
    """MANY events of the organization, each delivered to one endpoint with two attempts, plus an
    event and a delivery of another organization."""
    from apps.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

    now = timezone.now()
    made = []
    for org, count in ((organization, MANY), (other_organization, 1)):
        endpoint = WebhookEndpoint.objects.create(
            organization=org, url="https://hooks.example.com/q", events=["*"], secret="whsec_test"
        )
        events = Event.objects.bulk_create(
            Event(
                organization=org,
                type="customer.updated",
                api_version="2024-01-01",
                object_type="customer",
                object_id=f"cus_{i:03d}",
                sequence=1,
                data={"object": {"id": f"cus_{i:03d}", "n": i}},
                created_at=now - timedelta(seconds=count - i),
            )
            for i in range(count)
        )
        rows = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(organization=org, event=event, endpoint=endpoint) for event in events
        )
        for i, row in enumerate(rows):
            row.created_at = now - timedelta(seconds=count - i)
        WebhookDelivery.objects.bulk_update(rows, ["created_at"])
        WebhookAttempt.objects.bulk_create(
            WebhookAttempt(organization=org, delivery=row, number=n, url=endpoint.url, status_code=500)
            for row in rows
            for n in (1, 2)
        )
        if org == organization:
            made = rows
    return made


def test_event_list_page_of_100_costs_the_same_as_a_page_of_1(warm_client, deliveries):
    one, small = measure(warm_client, "/v1/events", {"limit": 1})
    hundred, large = measure(warm_client, "/v1/events", {"limit": 100})
    assert len(one["data"]) == 1 and len(hundred["data"]) == 100 and hundred["has_more"] is True
    assert {event["type"] for event in hundred["data"]} == {"customer.updated"}
    assert_same_cost(small, large, EVENT_LIST_QUERIES)


def test_delivery_list_page_of_100_costs_the_same_as_a_page_of_1(warm_client, deliveries):
    one, small = measure(warm_client, "/v1/webhook_deliveries", {"limit": 1})
    hundred, large = measure(warm_client, "/v1/webhook_deliveries", {"limit": 100})
    assert len(one["data"]) == 1 and len(hundred["data"]) == 100 and hundred["has_more"] is True
    assert hundred["data"][0]["id"] == deliveries[-1].pk
    for delivery in hundred["data"]:
        assert delivery["event_type"] == "customer.updated"
        assert [attempt["number"] for attempt in delivery["attempts"]] == [1, 2]
    assert_same_cost(small, large, DELIVERY_LIST_QUERIES)
