"""Real servers for the WebSocket tests: uvicorn (the ASGI app: HTTP and WebSocket) and gunicorn,
in subprocesses on 127.0.0.1 (free ports), on a database of their own.

The servers are other processes, so they cannot see the test's transaction: they get a database of
their own, migrated and seeded by `prepare` (a subprocess too), like tests/test_site_surfaces.py's
gunicorn. On the PostgreSQL run (DATABASE_URL set) that database is PostgreSQL,
`test_<name>_<suffix>`; otherwise a SQLite file.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "subscriptions-tests-jwt-secret-0123456789abcdef"
ADMIN_SECRET = "subscriptions-tests-admin-secret"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_url(suffix):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    parts = urlsplit(url)
    name = f"test_{parts.path.lstrip('/')}_{suffix}"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _admin_connection(url):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True)


def own_database(tmp_path, suffix):
    """A new, empty database for the servers: its DATABASE_URL."""
    postgres = _postgres_url(suffix)
    if postgres is None:
        return f"sqlite:///{tmp_path / f'{suffix}.sqlite3'}"
    url, name = postgres
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def drop_database(url):
    if url.startswith("sqlite"):
        return
    name = urlsplit(url).path.lstrip("/")
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(database_url, redis_url=None, **extra):
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "stateset.settings",
            "DEBUG": "0",
            "PYTHONPATH": str(ROOT),
            "STATESET_JWT_SECRET": JWT_SECRET,
            "STATESET_ADMIN_SECRET": ADMIN_SECRET,
            "GUNICORN_ACCESS_LOG": "",
            "WEB_CONCURRENCY": "1",
            "LOG_LEVEL": "WARNING",
            "PYTHONWARNINGS": "ignore:No directory at:UserWarning",
        }
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CACHE_KEY_PREFIX"] = f"subs-test-{os.getpid()}"
    env.update({name: str(value) for name, value in extra.items()})
    return env


SETUP = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from apps.accounts.models import Plan
from apps.accounts.services import api_key_create, organization_create
acme = organization_create(name="Acme", slug="acme", plan=Plan.GROWTH)
globex = organization_create(name="Globex", slug="globex", plan=Plan.GROWTH)
def key(org, kind="secret", mode="live", scopes=()):
    return api_key_create(organization=org, kind=kind, mode=mode, scopes=list(scopes))[1]
print(json.dumps({
    "acme": acme.id,
    "acme_sandbox": acme.sandbox.id,
    "globex": globex.id,
    "acme_key": key(acme),
    "acme_test_key": key(acme, mode="test"),
    "globex_key": key(globex),
    "acme_jobs_key": key(acme, "restricted", scopes=["jobs:read"]),
    "acme_customers_key": key(acme, "restricted", scopes=["customers:read"]),
}))
"""


def prepare(env):
    """Migrate and seed the servers' database: ids and keys (see SETUP)."""
    done = subprocess.run([sys.executable, "-c", SETUP], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


class Server:
    """uvicorn (`asgi`) or gunicorn (`wsgi`) on a free port, until `stop()`."""

    def __init__(self, kind, env):
        self.port = free_port()
        if kind == "asgi":
            command = [
                sys.executable, "-m", "uvicorn", "stateset.asgi:application",
                "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        else:
            command = [
                str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "stateset/gunicorn.conf.py",
                "--bind", f"127.0.0.1:{self.port}", "stateset.wsgi:application",
            ]  # fmt: skip
        # The server's output goes to a file (a pipe nobody reads could fill and stall it).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.output()
            try:
                if requests.get(f"{self.http}/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"the {kind} server did not start"
            time.sleep(0.2)

    @property
    def http(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self):
        return f"ws://127.0.0.1:{self.port}"

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
