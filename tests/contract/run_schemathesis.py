#!/usr/bin/env python
"""Contract check (`make contract`): the real server against its own `/v1/openapi.json`.

1. A fresh database: a SQLite file in a temporary directory, or, with DATABASE_URL set, a new
   database on that PostgreSQL server (dropped at the end).
2. Two organizations, A and B, each with a secret key, a few customers and a webhook endpoint.
3. The server (gunicorn) on a free 127.0.0.1 port, rate limits off, webhook deliveries queued in
   memory (nothing leaves the machine).
4. schemathesis with A's key: every check, a fixed seed, a bounded number of examples per
   operation. Any 5xx, schema violation or undocumented status fails the stage.
5. B's key: every object of A is a 404 for B (read, update, delete, actions), and B's lists hold
   none of A's ids.

Environment:
  CONTRACT_MAX_EXAMPLES   examples per operation (default 25)
  CONTRACT_SEED           the generator's seed (default 20240101)
  CONTRACT_WORKERS        schemathesis workers (default 1)
  CONTRACT_INJECT_500     a path prefix, e.g. /v1/customers: the server answers 500 there
                          (tests/contract/settings_inject.py), which must turn the stage red
  CONTRACT_REPORT_DIR     where schemathesis writes its JUnit report (default: the temp dir)
  CONTRACT_KEEP           1: keep the temporary directory (database, server log)
Extra arguments are passed to `schemathesis run`.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(sys.executable).parent


def main(argv):
    workdir = Path(tempfile.mkdtemp(prefix="stateset-contract-"))
    env = server_environment(workdir)
    drop_database = create_database(env)
    server = None
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        seed = json.loads(run_python(env, ROOT / "tests" / "contract" / "seed.py"))
        port = free_port()
        server = start_server(env, port, workdir)
        base = f"http://127.0.0.1:{port}"
        wait_for(base, server)
        status = run_schemathesis(base, seed["a"]["key"], workdir, argv)
        cross_tenant_failures = cross_tenant_check(base, seed)
        for failure in cross_tenant_failures:
            print(f"cross-tenant: {failure}", file=sys.stderr)
        if not cross_tenant_failures:
            print("cross-tenant: every object of organization A is a 404 for organization B")
        if server.poll() is not None:
            print(f"the server exited early ({server.returncode}); see {workdir / 'server.log'}", file=sys.stderr)
            status = status or 1
        return status or (1 if cross_tenant_failures else 0)
    finally:
        stop_server(server)
        if drop_database:
            drop_database()
        if os.environ.get("CONTRACT_KEEP") == "1":
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# Setup -----------------------------------------------------------------------------------


def server_environment(workdir):
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.contract.settings_inject"
            if os.environ.get("CONTRACT_INJECT_500")
            else "stateset.settings",
            "RATELIMIT_ENABLE": "false",
            "DEBUG": "false",
            # Queued, never sent: deliveries to the endpoints the generator invents stay here.
            "WEBHOOK_DELIVERY_BACKEND": "celery",
            "CELERY_BROKER_URL": "memory://",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'contract.sqlite3'}"
    return env


def create_database(env):
    """With a PostgreSQL DATABASE_URL, point the run at a new database; returns its dropper."""
    url = env["DATABASE_URL"]
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    name = f"contract_{secrets.token_hex(4)}"

    def connect():
        return psycopg.connect(
            host=config["HOST"],
            port=config["PORT"] or 5432,
            user=config["USER"],
            password=config["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )

    with connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name

    def drop():
        with connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return drop


def manage(env, *args):
    subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True)


def run_python(env, script):
    return subprocess.run([PYTHON, str(script)], env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env, port, workdir):
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "stateset.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
            "--timeout",
            "60",
            "--no-control-socket",  # another gunicorn on the machine (a benchmark) owns the default
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(base, server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server did not start (exit {server.returncode})")
        try:
            # The first request builds the schema: seconds on a busy machine.
            if requests.get(f"{base}/v1/openapi.json", timeout=60).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.3)
    raise SystemExit("the server did not answer within a minute")


def stop_server(server):
    if server is None or server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# Checks ----------------------------------------------------------------------------------


def run_schemathesis(base, key, workdir, extra_args):
    report_dir = Path(os.environ.get("CONTRACT_REPORT_DIR") or workdir)
    command = [
        str(BIN / "schemathesis"),
        "run",
        f"{base}/v1/openapi.json",
        "--checks",
        "all",
        # The contract rejects parameter combinations OpenAPI 3.0 cannot express (`cursor` with
        # `offset`, `starting_after` with `ending_before`) and applies rules a schema does not
        # carry (metadata limits): a schema-valid request can rightly be a 400. Every other check,
        # including that schema-violating requests are rejected, gates the stage.
        "--exclude-checks",
        "positive_data_acceptance",
        "--header",
        f"Authorization: Bearer {key}",
        "--seed",
        os.environ.get("CONTRACT_SEED", "20240101"),
        "--max-examples",
        os.environ.get("CONTRACT_MAX_EXAMPLES", "25"),
        # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11 does not
        # survive from several threads at once ("AST constructor recursion depth mismatch").
        "--workers",
        os.environ.get("CONTRACT_WORKERS", "1"),
        "--request-timeout",
        "30",
        # Revoking a key is irreversible: the generator would revoke the very key it runs with.
        # B's key revoking A's is in the cross-tenant check.
        "--exclude-operation-id",
        "api_keys_destroy",
        "--exclude-operation-id",
        "api_keys_revoke_create",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        *extra_args,
    ]
    print("$", " ".join(part if "Bearer" not in part else "Authorization: Bearer sk_***" for part in command))
    return subprocess.run(command, cwd=ROOT).returncode


def cross_tenant_check(base, seed):
    """Organization B's key on organization A's objects: never anything but a 404."""
    headers = {"Authorization": f"Bearer {seed['b']['key']}"}
    failures = []
    probes = []
    for customer in seed["a"]["customers"]:
        probes += [
            ("GET", f"/v1/customers/{customer}", None),
            ("PATCH", f"/v1/customers/{customer}", {"first_name": "Mallory"}),
            ("PUT", f"/v1/customers/{customer}", {"first_name": "Mallory"}),
            ("DELETE", f"/v1/customers/{customer}", None),
        ]
    webhook = seed["a"]["webhook"]
    probes += [
        ("GET", f"/v1/webhooks/{webhook}", None),
        ("PATCH", f"/v1/webhooks/{webhook}", {"description": "Mallory"}),
        ("DELETE", f"/v1/webhooks/{webhook}", None),
        ("GET", f"/v1/webhooks/{webhook}/deliveries", None),
        ("POST", f"/v1/webhooks/{webhook}/disable", None),
        ("POST", f"/v1/webhooks/{webhook}/rotate_secret", None),
        ("GET", f"/v1/api_keys/{seed['a']['key_id']}", None),
        ("POST", f"/v1/api_keys/{seed['a']['key_id']}/revoke", None),
        ("GET", f"/v1/customers?starting_after={seed['a']['customers'][0]}", None),
    ]
    for method, path, body in probes:
        response = requests.request(method, base + path, json=body, headers=headers, timeout=30)
        if response.status_code != 404:
            failures.append(f"{method} {path} with B's key answered {response.status_code}, not 404")
    a_ids = {*seed["a"]["customers"], webhook}
    for path in ("/v1/customers?limit=100", "/v1/customers/search?limit=100", "/v1/webhooks?limit=100"):
        response = requests.get(base + path, headers=headers, timeout=30)
        seen = {row.get("id") for row in response.json().get("data", [])} if response.ok else set()
        if not response.ok or seen & a_ids:
            failures.append(f"GET {path} with B's key: {response.status_code}, A's ids {sorted(seen & a_ids)}")
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
