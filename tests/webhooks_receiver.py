"""A real HTTP receiver on loopback for webhook tests and the benchmark.

`Receiver(responses=[500, 200])` answers the first request 500, then 200 (the last status
repeats). `hold=True` keeps the first request open until `release()` (to kill a worker mid-request).
Every request is recorded with its headers, body and arrival time.
"""

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float

    @property
    def json(self):
        return orjson.loads(self.body)


class Receiver:
    def __init__(self, responses=(200,), delay=0.0, hold=False, record=True):
        self.responses = list(responses)
        self.delay = delay
        self.hold = hold
        self.record = record
        self.requests = []
        self.count = 0
        self.first_at = self.last_at = None
        self._lock = threading.Condition()
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, each response would
            # wait ~40 ms for the client's delayed ACK.
            disable_nagle_algorithm = True

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver._arrived(self.path, dict(self.headers.items()), body)
                if receiver.hold and status == "hold":
                    receiver._released.wait(60)
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                payload = b'{"received": true}' if 200 <= status < 300 else b'{"error": "nope"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _arrived(self, path, headers, body):
        with self._lock:
            index = self.count
            self.count += 1
            self.last_at = time.monotonic()
            self.first_at = self.first_at or self.last_at
            if self.record:
                self.requests.append(Received(path, headers, body, time.monotonic()))
            self._lock.notify_all()
        if self.hold and index == 0:
            return "hold"
        return self.responses[min(index, len(self.responses) - 1)]

    def release(self):
        self._released.set()

    def wait_for(self, count, timeout=20.0):
        """Wait until `count` requests arrived; True when they did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release()
        self.server.shutdown()
        self.server.server_close()
