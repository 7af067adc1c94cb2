"""List pages built from rows show exactly what the instance path shows."""

import pytest

from apps.core.context import Actor
from apps.crm.selectors import customer_list
from apps.crm.serializers import CustomerSerializer


@pytest.fixture
def customers(api_client):
    for i, addresses in enumerate(
        [
            [],
            [{"address_line_1": "1 A St", "city": "Leeds", "country_code": "GB", "is_default_billing": True}],
            [
                {"address_line_1": "2 B St", "city": "York", "country_code": "GB"},
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
        response = api_client.post(
            "/v1/customers",
            {
                "email": f"c{i}@x.com",
                "metadata": {"n": i, "ratio": 0.5, "flag": True, "none": None, "text": "é ü"},
                "tags": ["b", "a"],
                "activation_date": "2024-01-02T03:04:05.678Z" if i else None,
                "addresses": addresses,
            },
        )
        assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "expand", [{}, {"default_shipping_address": {}}, {"default_billing_address": {}, "default_shipping_address": {}}]
)
def test_row_plan_matches_the_instance_path(customers, organization, expand):
    context = {"actor": Actor.system(organization), "expand": expand}
    queryset = customer_list(organization=organization).order_by("created_at", "pk")
    plan = CustomerSerializer(context=context).row_builder(queryset)
    assert plan is not None
    from_rows = plan.represent(list(plan.values(queryset)), livemode=True)
    from_instances = CustomerSerializer(list(queryset), many=True, context=context).data
    assert from_rows == [dict(item) for item in from_instances]
    assert [list(item) for item in from_rows] == [list(item) for item in from_instances]  # same key order
    assert from_rows[2]["addresses"][1]["city"] == "Bath"


def test_list_endpoint_serves_rows_with_the_same_body_as_retrieve(api_client, customers):
    listed = api_client.get("/v1/customers", {"expand": "default_billing_address"}).json()["data"]
    for item in listed:
        one = api_client.get(f"/v1/customers/{item['id']}", {"expand": "default_billing_address"}).json()
        assert one == item


def test_a_serializer_with_its_own_representation_has_no_row_plan(organization):
    from apps.events.models import Event
    from apps.events.serializers import EventSerializer

    class OwnRepresentation(EventSerializer):
        def to_representation(self, instance):
            return {"id": instance.pk}

    context = {"actor": Actor.system(organization), "expand": {}}
    assert OwnRepresentation(context=context).row_builder(Event.objects.all()) is None
