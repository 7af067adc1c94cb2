"""What a new user meets around the API: the demo command's URLs, the API index, error pages for
browsers and for API clients, the favicon, and gunicorn's request limits."""

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import override_settings

from apps.core.routing import router

ROOT = Path(__file__).resolve().parent.parent
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def assert_json_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code and body["error"]["code"] == code
    assert body["request_id"] == response["X-Request-ID"]


# seed_demo -------------------------------------------------------------------------------------


def test_seed_demo_prints_the_address_it_was_given(db):
    out = io.StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.1:9000/", stdout=out)
    output = out.getvalue()
    assert "http://127.0.0.1:9000/admin/" in output
    assert "http://127.0.0.1:9000/v1/customers" in output
    assert ":8000" not in output

    out = io.StringIO()
    call_command("seed_demo", "--if-empty", "--base-url", "http://127.0.0.1:9000", stdout=out)
    assert "already has data" in out.getvalue() and "http://127.0.0.1:9000/admin/" in out.getvalue()


def test_make_run_hands_its_port_to_seed_demo():
    makefile = (ROOT / "Makefile").read_text()
    assert "seed_demo --if-empty --base-url http://127.0.0.1:$(PORT)" in makefile


# The API index -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1", "/v1/", "/api/v1", "/api/v1/"])
def test_api_index_needs_no_credential(anonymous_client, path):
    response = anonymous_client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["object"] == "api" and body["version"] == "2024-01-01"
    assert body["links"]["openapi"] == "/v1/openapi.json" and body["links"]["health"] == "/health"
    assert body["resources"]["customers"] == "/v1/customers"
    assert set(body["resources"]) == {prefix for prefix, _viewset, _basename in router.canonical.registry}


def test_api_index_links_all_answer(api_client):
    body = api_client.get("/v1").json()
    for path in [*body["links"].values(), body["resources"]["customers"], body["resources"]["jobs"]]:
        if path == "/v1/auth/token":
            continue  # POST only
        assert api_client.get(path).status_code == 200, path


def test_api_index_refuses_writes_in_json(anonymous_client):
    response = anonymous_client.post("/v1", {"name": "x"})
    assert_json_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "GET, HEAD"


def test_paths_below_the_index_still_answer_json_404(anonymous_client):
    assert_json_error(anonymous_client.get("/v1/nope"), 404, "RESOURCE_NOT_FOUND")
    assert_json_error(anonymous_client.get("/api/v1/nope/deeper"), 404, "RESOURCE_NOT_FOUND")


# Error pages outside the API -----------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_unknown_page_is_json_for_api_clients(client, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.get("/nope", **headers)
    assert_json_error(response, 404, "RESOURCE_NOT_FOUND")
    assert "/nope" in response.json()["message"]


def test_unknown_page_is_html_for_browsers(client):
    response = client.get("/nope", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_api_paths_stay_json_even_for_browsers(client):
    assert_json_error(client.get("/v1/nope", HTTP_ACCEPT=BROWSER_ACCEPT), 404, "RESOURCE_NOT_FOUND")


@override_settings(ALLOWED_HOSTS=["testserver"])
def test_bad_host_is_negotiated_too(client):
    assert_json_error(client.get("/health", HTTP_HOST="evil.example"), 400, "BAD_REQUEST")
    response = client.get("/health", HTTP_HOST="evil.example", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")


def test_server_error_is_negotiated(rf):
    from apps.core.endpoints import server_error

    request = rf.get("/admin/")
    request.request_id = "req_test"
    response = server_error(request)
    assert response.status_code == 500 and json.loads(response.content)["code"] == "INTERNAL_ERROR"
    assert b"Traceback" not in response.content

    browser = rf.get("/admin/", HTTP_ACCEPT=BROWSER_ACCEPT)
    response = server_error(browser)
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")


# Favicon ------------------------------------------------------------------------------------------


def test_favicon_is_served_at_the_root(client):
    response = client.get("/favicon.ico", HTTP_ACCEPT="image/avif,image/webp,*/*")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    content = b"".join(response.streaming_content)
    assert content[:4] == b"\x00\x00\x01\x00"  # the ICO header
    assert "max-age" in response["Cache-Control"]


# Gunicorn -----------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port, path, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """Real gunicorn with the production config, on a migrated SQLite file of its own.

    Yields (port, secret key, ids of three customers)."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('gunicorn') / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "stateset.settings",
            "DEBUG": "0",
            "RATELIMIT_ENABLE": "0",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_ACCESS_LOG": "",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("REDIS_URL", None)
    setup = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0, interactive=False)\n"
        "from apps.accounts.services import api_key_create, organization_create\n"
        "from apps.core.context import Actor\n"
        "from apps.crm.services import customer_create\n"
        "org = organization_create(name='Acme', slug='acme')\n"
        "actor = Actor.system(org, 'test')\n"
        "ids = [customer_create(organization=org, actor=actor, data={'email': f'c{i}@example.com'}).id"
        " for i in range(3)]\n"
        "print(api_key_create(organization=org, kind='secret', mode='live')[1], *ids)\n"
    )
    prepared = subprocess.run(
        [sys.executable, "-c", setup], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert prepared.returncode == 0, prepared.stderr
    secret, *customer_ids = prepared.stdout.split()

    port = free_port()
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-c",
            "stateset/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "stateset.wsgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                fetch(port, "/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield port, secret, customer_ids
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.live
def test_gunicorn_accepts_long_request_lines_and_headers(gunicorn_server):
    port, secret, customer_ids = gunicorn_server
    made_up = [f"cus_01JD6Q5Z{index:016d}AB" for index in range(97)]
    assert all(len(customer_id) == 30 for customer_id in made_up)
    headers = {"Authorization": f"Bearer {secret}", "X-Padding": "x" * 12000}

    query = urlencode({"id_in": ",".join(made_up + customer_ids), "limit": "100"})
    status, content_type, body = fetch(port, f"/v1/customers?{query}", headers)
    assert status == 200, body[:500]
    assert content_type == "application/json"
    assert sorted(row["id"] for row in json.loads(body)["data"]) == sorted(customer_ids)

    # Twice gunicorn's default request-line limit (4094), within the configured 8190.
    emails = [f"someone.{index:04d}@example.com" for index in range(250)]
    path = "/v1/customers?" + urlencode({"email_in": ",".join(emails)})
    assert 4094 * 1.5 < len(path) < 8000
    status, content_type, body = fetch(port, path, headers)
    assert status == 200 and json.loads(body)["data"] == []


@pytest.mark.live
def test_gunicorn_answers_over_its_limits_itself(gunicorn_server):
    """What docs/api.md states: past these limits gunicorn answers, not the application."""
    port, secret, _ids = gunicorn_server
    auth = {"Authorization": f"Bearer {secret}"}
    status, _content_type, _body = fetch(port, "/v1/customers?email_in=" + "a" * 8200, auth)
    assert status == 414
    status, _content_type, _body = fetch(port, "/v1/customers", {**auth, "X-Padding": "x" * 17000})
    assert status == 431
