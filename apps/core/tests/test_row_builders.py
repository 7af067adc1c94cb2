"""Every registered list resource is served from rows (apps.core.rows) or says why not, and the
rows show exactly what the serializer shows through model instances, on generated data: live and
sandbox rows, nulls, nested relations and every declared expansion."""

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework import serializers

import stateset.urls  # noqa: F401 - registers every collection with the router
from apps.accounts.services import api_key_create
from apps.core import rows
from apps.core.context import Actor
from apps.core.jsonutil import dumps
from apps.core.models import Job
from apps.core.references import ReferenceField
from apps.core.routing import router
from apps.crm.models import CustomerAddress
from apps.crm.serializers import AddressSerializer, CustomerSerializer
from apps.events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.events.serializers import WebhookAttemptSerializer, WebhookDeliverySerializer, WebhookEndpointSerializer

pytestmark = pytest.mark.django_db

LIST_RESOURCES = {
    collection: viewset for collection, viewset, _basename in router.canonical.registry if hasattr(viewset, "list")
}
HOOK = "https://hooks.example.com/stateset"


@pytest.fixture
def generated(organization, api_client, settings):
    """A few rows of every list resource in the organization and in its sandbox, through the API
    and the services where they exist (deliveries' attempts and jobs have none: made directly)."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    sandbox_key = api_key_create(organization=organization, kind="secret", mode="test", name="sandbox")[1]
    for mode in ("live", "test"):
        api_key_create(organization=organization, kind="restricted", mode=mode, scopes=["customers:read"])
    clients = {organization: api_client, organization.sandbox: api_client.as_key(sandbox_key)}
    for org, client in clients.items():
        endpoint = client.post("/v1/webhooks", {"url": HOOK, "events": ["*"], "metadata": {"team": "erp"}})
        assert endpoint.status_code == 201, endpoint.content
        quiet = client.post("/v1/webhooks", {"url": HOOK + "/quiet", "events": ["order.*"]}).json()
        # Disabled by hand (not through a service): a row whose reason and time are set, whatever
        # the transition rules say.
        WebhookEndpoint.objects.filter(pk=quiet["id"]).update(
            status="disabled", disabled_reason="by hand", disabled_at=timezone.now()
        )
        for i, addresses in enumerate(
            [
                [],
                [{"address_line_1": "1 A St", "city": "Leeds", "country_code": "GB", "is_default_billing": True}],
                [
                    {"address_line_1": "2 B St", "city": "York", "country_code": "GB", "phone": "+44 1"},
                    {
                        "address_line_1": "3 C St",
                        "city": "Bath",
                        "country_code": "GB",
                        "is_default_shipping": True,
                        "is_default_billing": True,
                    },
                ],
            ]
        ):
            response = client.post(
                "/v1/customers",
                {
                    "email": f"c{i}@x.com",
                    "metadata": {"n": i, "ratio": 0.5, "flag": True, "none": None, "text": "é ü"},
                    "tags": ["b", "a"] if i else [],
                    "activation_date": "2024-01-02T03:04:05.678Z" if i else None,
                    "addresses": addresses,
                },
            )
            assert response.status_code == 201, response.content
        Job.objects.create(organization=org, kind="batch_create", payload={"items": []})
        Job.objects.create(
            organization=org, kind="batch_create", status=Job.Status.FAILED, error={"message": "x"}, result={"n": 1}
        )
    for number, delivery in enumerate(WebhookDelivery.objects.order_by("created_at", "pk")[:4], 1):
        for attempt in range(1, number % 3 + 1):
            WebhookAttempt.objects.create(
                organization=delivery.organization,
                delivery=delivery,
                number=attempt,
                url=HOOK,
                status_code=500 if attempt == 1 else None,
                error="timeout" if attempt > 1 else "",
                latency_ms=120 * attempt,
            )
    return organization


def _view(viewset, actor):
    view = viewset(request=None, kwargs={}, format_kwarg=None, action="list")
    view.actor_override = actor
    return view


def _expansions(serializer_class):
    return [{}, *({name: {}} for name in serializer_class.expandable_fields)]


def test_every_list_resource_has_a_row_plan_or_says_why_not(organization):
    assert {"customers", "events", "webhooks", "webhook_deliveries", "audit_logs", "api_keys", "jobs"} <= set(
        LIST_RESOURCES
    )
    actor = Actor.system(organization)
    for collection, viewset in LIST_RESOURCES.items():
        serializer_class = viewset.serializer_class
        reason = serializer_class.row_builder_opt_out
        if reason is not None:
            assert isinstance(reason, str) and reason.strip(), collection
            continue
        queryset = _view(viewset, actor).base_queryset("read")
        for expand in _expansions(serializer_class):
            serializer = serializer_class(context={"actor": actor, "expand": expand})
            assert serializer.row_builder(queryset) is not None, (
                f"{collection} (expand={expand}) cannot be built from rows and has no `row_builder_opt_out`"
            )


@pytest.mark.parametrize("collection", sorted(LIST_RESOURCES))
def test_rows_show_what_the_serializer_shows(generated, collection):
    viewset = LIST_RESOURCES[collection]
    serializer_class = viewset.serializer_class
    if serializer_class.row_builder_opt_out:
        return  # served from instances on purpose (the test above checks the reason)
    for org in (generated, generated.sandbox):
        actor = Actor.system(org)
        queryset = _view(viewset, actor).base_queryset("read").order_by("created_at", "pk")
        instances = list(queryset)
        assert len(instances) >= 2, f"no generated {collection} in {org}"
        for expand in _expansions(serializer_class):
            context = {"actor": actor, "expand": expand}
            builder = serializer_class(context=context).row_builder(queryset)
            from_rows = builder.represent(list(builder.values(queryset)), livemode=org.livemode)
            from_instances = serializer_class(instances, many=True, context=context).data
            # The same JSON, byte for byte: values, types, key order.
            assert dumps(from_rows) == dumps(from_instances), (collection, org.livemode, expand)


# The shapes the domains need, each on its own -------------------------------------------------


class AttemptMoneySerializer(WebhookAttemptSerializer):
    """Attempts with a money-like decimal (`latency_ms` as 2 places) and a primary-key field."""

    cost = serializers.DecimalField(source="latency_ms", max_digits=12, decimal_places=2, read_only=True)
    delivery_pk = serializers.PrimaryKeyRelatedField(source="delivery", read_only=True)

    class Meta(WebhookAttemptSerializer.Meta):
        fields = ["id", "number", "cost", "delivery_pk", "status_code"]
        read_only_fields = fields


class DeliveryTreeSerializer(WebhookDeliverySerializer):
    attempts = AttemptMoneySerializer(many=True, read_only=True)


class EndpointTreeSerializer(WebhookEndpointSerializer):
    """Two levels: endpoint -> deliveries -> attempts (an order's line items with their own)."""

    deliveries = DeliveryTreeSerializer(many=True, read_only=True)

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "deliveries"]


class AddressOfCustomerSerializer(AddressSerializer):
    """An address with its customer as an id, as `customer_id`, and expandable."""

    expandable_fields = {"customer": (CustomerSerializer, {})}
    customer = ReferenceField()
    customer_ref = serializers.CharField(source="customer_id", read_only=True)
    customer_email = serializers.CharField(source="customer.email", read_only=True)

    class Meta(AddressSerializer.Meta):
        fields = [*AddressSerializer.Meta.fields, "customer", "customer_ref", "customer_email"]


def _both_paths(serializer_class, queryset, organization, expand=None):
    context = {"actor": Actor.system(organization), "expand": expand or {}}
    builder = serializer_class(context=context).row_builder(queryset)
    assert builder is not None
    from_rows = builder.represent(list(builder.values(queryset)), livemode=organization.livemode)
    from_instances = serializer_class(list(queryset), many=True, context=context).data
    assert dumps(from_rows) == dumps(from_instances)
    return builder, from_rows


def test_two_levels_of_nesting_money_and_primary_keys(generated, django_assert_max_num_queries):
    queryset = WebhookEndpoint.objects.for_org(generated).order_by("created_at", "pk")
    builder, endpoints = _both_paths(EndpointTreeSerializer, queryset, generated)
    attempts = [attempt for endpoint in endpoints for d in endpoint["deliveries"] for attempt in d["attempts"]]
    assert attempts and {a["cost"] for a in attempts} <= {"120.00", "240.00"}
    assert all(isinstance(a["delivery_pk"], str) for a in attempts)
    # The page, its deliveries, their attempts: three queries whatever the page size.
    with django_assert_max_num_queries(3):
        builder.represent(list(builder.values(queryset)), livemode=True)


@pytest.mark.parametrize("expand", [{}, {"customer": {}}, {"customer": {"default_billing_address": {}}}])
def test_foreign_key_ids_and_expansions(generated, expand, django_assert_max_num_queries):
    queryset = CustomerAddress.objects.for_org(generated).order_by("created_at", "pk")
    builder, addresses = _both_paths(AddressOfCustomerSerializer, queryset, generated, expand)
    assert len(addresses) == 3
    for address in addresses:
        customer = address["customer"]
        customer_id = customer["id"] if expand else customer
        assert customer_id == address["customer_ref"]
        if expand:
            assert customer["object"] == "customer" and customer["email"] == address["customer_email"]
            assert any(a["id"] == address["id"] for a in customer["addresses"])
    # The page, the customers it points at, their addresses.
    with django_assert_max_num_queries(3 if expand else 1):
        builder.represent(list(builder.values(queryset)), livemode=True)


def test_a_list_without_a_plan_is_not_silent(monkeypatch, caplog):
    class Unplanned(AddressSerializer):
        def to_representation(self, instance):
            return {}

    with pytest.raises(ImproperlyConfigured, match="row_builder_opt_out"):
        rows.report_missing_row_builder(Unplanned)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    with caplog.at_level(logging.ERROR, logger="apps.core.rows"):
        rows.report_missing_row_builder(Unplanned)
        rows.report_missing_row_builder(Unplanned)
    assert len([r for r in caplog.records if "Unplanned" in r.getMessage()]) == 1  # once
    Unplanned.row_builder_opt_out = "made up for this test"
    rows.report_missing_row_builder(Unplanned)  # opted out: quiet


@pytest.mark.parametrize("collection", sorted(LIST_RESOURCES))
def test_a_repeated_list_request_reuses_its_plan(api_client, monkeypatch, collection):
    """Selectors build their querysets (and Prefetch objects) on every request; the builder and its
    compiled queries must still be built once, or every page pays for building them again."""
    built = []
    original = rows.RowBuilder.build.__func__

    def counting(cls, serializer, parent_queryset=None):
        built.append(type(serializer))
        return original(cls, serializer, parent_queryset)

    monkeypatch.setattr(rows.RowBuilder, "build", classmethod(counting))
    rows._BUILDERS.clear()
    for _ in range(3):
        assert api_client.get(f"/v1/{collection}", {"limit": 5}).status_code == 200
    first = len(built)
    assert first >= 1
    assert api_client.get(f"/v1/{collection}", {"limit": 5}).status_code == 200
    assert len(built) == first, f"{collection}: the builder was built again"
