"""The in-process delivery scheduler of the embedded setup (no Redis, no Celery worker).

A daemon thread keeps a heap of (due time, delivery id) and hands due deliveries to a small
thread pool, which runs exactly what the Celery task runs (`webhook_delivery_attempt`). Every
WEBHOOK_SWEEP_INTERVAL_SECONDS (and once at start) it runs the sweeper too, so retries that were
in memory when the process stopped are picked up from the database after a restart: the heap is
only a timer, the delivery rows are the truth.
"""

import heapq
import itertools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger("stateset.webhooks")

SWEEP = "sweep"


class EmbeddedScheduler:
    def __init__(self):
        self._condition = threading.Condition()
        self._heap = []
        self._counter = itertools.count()
        self._running = 0
        self._thread = None
        self._executor = None
        self._pid = None
        self._stopping = False
        self._next_sweep = 0.0
        self._attempt = self._sweep = None

    # Public -------------------------------------------------------------------------------

    def submit(self, delivery_id, at=None):
        due = at.timestamp() if at is not None else 0.0
        with self._condition:
            self._ensure_started()
            heapq.heappush(self._heap, (due, next(self._counter), delivery_id))
            self._condition.notify_all()

    def start(self):
        with self._condition:
            self._ensure_started()

    def wait_idle(self, timeout=30.0):
        """Block until nothing is queued or running (tests, benchmarks). True when idle."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True

    def counts(self):
        """(timers waiting, jobs running)."""
        with self._condition:
            return len(self._heap), self._running

    def stop(self):
        """Stop the threads and forget the in-memory timers (the rows stay due)."""
        with self._condition:
            thread, executor = self._thread, self._executor
            self._stopping = True
            self._condition.notify_all()
        if thread is not None and thread.is_alive():
            thread.join(timeout=10)
        if executor is not None:
            executor.shutdown(wait=True)
        with self._condition:
            self._heap.clear()
            self._thread = self._executor = self._pid = None
            self._running = 0
            self._stopping = False

    # Internals ----------------------------------------------------------------------------

    def _ensure_started(self):
        # After a fork (gunicorn) the threads of the parent do not exist in the child.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._running = 0
        self._executor = ThreadPoolExecutor(
            max_workers=settings.WEBHOOK_EMBEDDED_THREADS, thread_name_prefix="webhook-delivery"
        )
        self._next_sweep = 0.0  # sweep at start: resume what a previous process left due
        self._thread = threading.Thread(target=self._loop, name="webhook-scheduler", daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            with self._condition:
                if self._stopping:
                    return
                now = time.time()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if now >= self._next_sweep:
                    due.append(SWEEP)
                    self._next_sweep = now + settings.WEBHOOK_SWEEP_INTERVAL_SECONDS
                self._running += len(due)
                executor = self._executor
                if not due:
                    wake = min(self._heap[0][0] if self._heap else self._next_sweep, self._next_sweep)
                    self._condition.wait(max(0.001, wake - now))
                    continue
            for item in due:
                executor.submit(self._run, item)

    def configure(self, *, attempt, sweep):
        """What the threads run: `attempt(delivery_id)` and `sweep()` (the services, handed in by
        the app's ready() so that this module depends on nothing above it)."""
        self._attempt, self._sweep = attempt, sweep

    def _run(self, item):
        try:
            close_old_connections()
            if item == SWEEP:
                self._sweep()
            else:
                self._attempt(item)
        except Exception:
            # The row is still due (its lease runs out): the next sweep retries it.
            logger.exception("Embedded webhook job %s failed", item)
        finally:
            # Pool threads are long-lived; do not keep a database connection per idle thread.
            connections.close_all()
            with self._condition:
                self._running -= 1
                self._condition.notify_all()


scheduler = EmbeddedScheduler()


def autostart(**kwargs):
    """`request_started` receiver: a serving process resumes due deliveries without waiting for
    a new event."""
    from django.core.signals import request_started

    request_started.disconnect(autostart, dispatch_uid="webhook-embedded-autostart")
    if settings.WEBHOOK_DELIVERY_BACKEND == "embedded" and settings.WEBHOOK_EMBEDDED_AUTOSTART:
        scheduler.start()
