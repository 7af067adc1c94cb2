"""Jobs run a handler found by a stable registered name (`customers.batch_create`), never a code
path stored in the row: a job whose name nothing answers to fails cleanly."""

import pytest

from apps.core.jobs import JOB_HANDLERS, job_run
from apps.core.models import Job
from apps.crm.models import Customer

ACTOR = {"role": "admin", "credential_type": "api_key", "credential_id": "key_test", "scopes": []}


@pytest.fixture
def queued(organization):
    def make(name, items):
        return Job.objects.create(
            organization=organization, kind="batch_create", payload={"name": name, "items": items, "actor": ACTOR}
        )

    return make


def test_job_with_an_unknown_name_fails_with_a_clear_error(api_client, queued):
    job = queued("orders.no_such_job", [{"email": "a@x.com"}])
    job_run(job.pk)
    body = api_client.get(f"/v1/jobs/{job.pk}").json()
    assert body["status"] == "failed" and body["finished_at"]
    assert body["error"]["code"] == "JOB_UNKNOWN" and "orders.no_such_job" in body["error"]["message"]
    assert Customer.objects.count() == 0


def test_job_queued_under_its_registered_name_runs(api_client, queued, organization):
    api_client.get("/v1/jobs")  # any request loads the routes, as a worker's first job does
    assert "customers.batch_create" in JOB_HANDLERS
    job = queued("customers.batch_create", [{"email": "q1@x.com"}, {"email": "q2@x.com"}])
    job_run(job.pk)
    body = api_client.get(f"/v1/jobs/{job.pk}").json()
    assert body["status"] == "succeeded" and body["result"]["created"] == 2
    customers = Customer.objects.filter(organization=organization)
    assert sorted(customers.values_list("email", flat=True)) == ["q1@x.com", "q2@x.com"]
    assert set(body["result"]["ids"]) == set(customers.values_list("pk", flat=True))
    assert set(customers.values_list("created_by", flat=True)) == {"key_test"}


def test_batch_job_row_holds_the_name_and_items_not_a_code_path(api_client, settings):
    settings.BATCH_SYNC_LIMIT = 1
    response = api_client.post("/v1/customers/batch", {"items": [{"email": "n1@x.com"}, {"email": "n2@x.com"}]})
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.payload["name"] == "customers.batch_create"
    assert set(job.payload) == {"name", "items", "actor"}


def test_invalid_item_fails_the_job_and_creates_nothing(api_client, queued):
    api_client.get("/v1/jobs")
    job = queued("customers.batch_create", [{"email": "ok@x.com"}, {"email": "not an email"}])
    job_run(job.pk)
    body = api_client.get(f"/v1/jobs/{job.pk}").json()
    assert body["status"] == "failed" and body["error"]["code"] != "JOB_UNKNOWN"
    assert Customer.objects.count() == 0
