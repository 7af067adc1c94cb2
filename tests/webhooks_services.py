"""Real services for the webhook tests and benchmark: a private redis-server on a free port and
a Celery worker subprocess. Nothing here touches the shared Redis (6379), and only processes
started here are stopped, by their own pid/process group."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def point_celery_at(broker_url):
    """Make this process publish to `broker_url` (drops the pooled connections to the old one)."""
    from stateset.celery import app

    app.conf.broker_url = broker_url
    app.conf.broker_write_url = broker_url
    app.conf.broker_read_url = broker_url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


class Worker:
    """`celery -A stateset worker -B` (beat embedded: the sweeper runs) in its own process group."""

    def __init__(self, *, broker_url, database_url, log_path, pool="solo", concurrency=1, extra_env=None):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": broker_url,
            "CELERY_BROKER_URL": broker_url,
            "DB_CONN_MAX_AGE": "0",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.log_path = Path(log_path)
        self.schedule_path = self.log_path.with_suffix(".beat")
        self.pool = pool
        self.concurrency = concurrency
        self.process = None
        self.starts = 0

    def start(self, timeout=60):
        self.starts += 1
        log = open(self.log_path, "a")  # noqa: SIM115 - kept open for the process's lifetime
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "stateset",
                "worker",
                "-B",
                "-s",
                str(self.schedule_path),
                "-P",
                self.pool,
                "-c",
                str(self.concurrency),
                "-l",
                "info",
                "-n",
                f"webhooks-{os.getpid()}-{self.starts}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited: see {self.log_path}")
            with open(self.log_path) as handle:
                handle.seek(offset)
                if " ready." in handle.read():
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not get ready: see {self.log_path}")

    def kill(self):
        """kill -9 of the worker (its whole process group: the worker and its embedded beat)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""
