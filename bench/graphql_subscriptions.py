"""Benchmark: how long a change made through REST takes to reach 500 open GraphQL subscriptions on
one ASGI server process, beside the same change reaching 1 subscription (the baseline), measured
in the same run.

    .venv/bin/python bench/graphql_subscriptions.py            # or: make bench
    .venv/bin/python bench/graphql_subscriptions.py --subscriptions 500 --rounds 20 [--rest asgi]

What it does:
1. the database and organization of bench/customers_list.py (PostgreSQL `stateset_bench`, 300
   customers; BENCH_DATABASE_URL and BENCH_REDIS_URL override), and a new live secret key;
2. starts one uvicorn process (`stateset.asgi:application`, the production ASGI server) and, for
   the REST writes, gunicorn (`--rest gunicorn`, the default: the production layout, where the
   change reaches the ASGI process through channels-redis) or the ASGI server itself
   (`--rest asgi`); the outbox poll runs as in production (every second);
3. opens the subscriptions, one WebSocket connection each (`graphql-transport-ws`), from client
   processes of their own (`--clients`, 2 by default), each
   `subscription ($x: String!) { customers(where: {email: {_neq: $x}}, order_by: {created_at: desc},
   limit: 10) { id email first_name } }`, waiting for every first answer;
4. per round, PATCHes the newest customer's `first_name` through REST and records when each
   subscription receives the answer carrying the new name (latency from the moment the REST request
   is sent, so it includes the write itself);
5. scenarios: 1 subscription (the baseline); N subscriptions of one query (Hasura's multiplexed
   case: one run, N answers); N subscriptions spread over `--distinct` different variables (that
   many runs per change). Prints p50/p95/p99/max per scenario and the ratio of each p99 to the
   baseline's. Target: p99 under 1 s with 500 subscriptions.

Timestamps are taken by the client processes as messages arrive (time.time(), one clock), so the
figures include the clients' own work; on a shared 2-core machine they move with whatever else
runs, the ratio much less.
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import customers_list  # noqa: E402 - after the path is set

DOCUMENT = (
    "subscription ($x: String!) { customers(where: {email: {_neq: $x}}, order_by: {created_at: desc}, limit: 10) "
    "{ id email first_name } }"
)


# Client processes -----------------------------------------------------------------------------


def _client(url, secret, variables, ready, receipts, stop):
    asyncio.run(_client_async(url, secret, variables, ready, receipts, stop))


async def _client_async(url, secret, variables, ready, receipts, stop):
    from websockets.asyncio.client import connect

    marker = re.compile(rb"mark-([a-z0-9]+)-(\d+)")
    sockets = []
    for index, value in enumerate(variables):
        ws = await connect(url, subprotocols=["graphql-transport-ws"], max_size=None, open_timeout=60)
        init = {"type": "connection_init", "payload": {"headers": {"Authorization": f"Bearer {secret}"}}}
        await ws.send(json.dumps(init))
        await ws.recv()
        subscribe = {"id": str(index), "type": "subscribe", "payload": {"query": DOCUMENT, "variables": {"x": value}}}
        await ws.send(json.dumps(subscribe))
        first = json.loads(await ws.recv())
        if first.get("type") != "next" or "errors" in first["payload"]:
            raise SystemExit(f"the subscription failed: {first}")
        sockets.append(ws)
    ready.put(len(sockets))

    async def read(ws):
        async for message in ws:
            at = time.time()
            found = marker.search(message.encode() if isinstance(message, str) else message)
            if found:
                receipts.put((found.group(1).decode(), int(found.group(2)), at))

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    await asyncio.to_thread(stop.wait)
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()


# The run ----------------------------------------------------------------------------------------


def patch(port, path, secret, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        conn.request("PATCH", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"the REST write answered {response.status}")
    finally:
        conn.close()


def newest_customer(port, secret):
    headers = {"Authorization": f"Bearer {secret}"}
    status, body = customers_list.fetch(port, "/v1/customers?limit=1&sort=-created_at", headers)
    if status != 200:
        raise SystemExit(f"GET /v1/customers answered {status}")
    return json.loads(body)["data"][0]["id"]


def scenario(name, asgi_port, rest_port, secret, customer_id, subscriptions, distinct, rounds, clients):
    context = multiprocessing.get_context("spawn")
    ready, receipts, stop = context.Queue(), context.Queue(), context.Event()
    values = [f"nobody{index % distinct}@example.com" for index in range(subscriptions)]
    shares = [values[index::clients] for index in range(clients)]
    url = f"ws://127.0.0.1:{asgi_port}/v1/ws"
    processes = [
        context.Process(target=_client, args=(url, secret, share, ready, receipts, stop)) for share in shares if share
    ]
    for process in processes:
        process.start()
    opened = sum(ready.get(timeout=300) for _ in processes)
    assert opened == subscriptions
    tag = secrets.token_hex(3)
    latencies, after_commit, writes = [], [], []
    time.sleep(1.0)
    # Round 0 warms up (the server's first run of the query, gunicorn's first request): not counted.
    for round_number in range(rounds + 1):
        sent = time.time()
        patch(rest_port, f"/v1/customers/{customer_id}", secret, {"first_name": f"mark-{tag}-{round_number}"})
        answered = time.time()
        got = 0
        deadline = time.time() + 15
        while got < subscriptions:
            left = deadline - time.time()
            if left <= 0:
                heard = f"{got} of {subscriptions} subscriptions heard the change"
                raise SystemExit(f"{name}: round {round_number}: {heard}")
            mark, number, at = receipts.get(timeout=left)
            if mark == tag and number == round_number:
                got += 1
                if round_number:
                    latencies.append(at - sent)
                    after_commit.append(at - answered)
        if round_number:
            writes.append(answered - sent)
        time.sleep(0.3)
    stop.set()
    for process in processes:
        process.join(timeout=30)
    return latencies, after_commit, writes


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def start_uvicorn(port, organization_id):
    command = [
        sys.executable, "-m", "uvicorn", "stateset.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", "--backlog", "2048",
    ]  # fmt: skip
    env = customers_list.server_environment(organization_id)
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited with status {process.returncode}")
        try:
            if customers_list.fetch(port, "/health", {})[0] in (200, 503):
                return process
        except OSError:
            pass
        time.sleep(0.2)
    customers_list.stop_gunicorn(process)
    raise SystemExit("uvicorn did not answer /health within 60 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=500)
    parser.add_argument("--distinct", type=int, default=50, help="different variables in the spread scenario")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2, help="client processes holding the connections")
    parser.add_argument("--rest", choices=("gunicorn", "asgi"), default="gunicorn")
    args = parser.parse_args()

    customers_list.ensure_database()
    organization_id, secret = customers_list.prepare_data()
    asgi_port = customers_list.free_port()
    asgi = start_uvicorn(asgi_port, organization_id)
    gunicorn = None
    try:
        rest_port = asgi_port
        if args.rest == "gunicorn":
            rest_port = customers_list.free_port()
            gunicorn = customers_list.start_gunicorn(rest_port, organization_id)
        customer_id = newest_customer(rest_port, secret)
        print(
            f"uvicorn (1 process) serves the subscriptions; REST writes go to {args.rest}"
            f"{' (the change crosses through channels-redis)' if gunicorn else ''}; {args.rounds} changes per scenario"
        )
        scenarios = [
            ("1 subscription (baseline)", 1, 1),
            (f"{args.subscriptions} subscriptions, 1 query", args.subscriptions, 1),
            (f"{args.subscriptions} subscriptions, {args.distinct} distinct", args.subscriptions, args.distinct),
        ]
        results = []
        for name, count, distinct in scenarios:
            measured = scenario(
                name, asgi_port, rest_port, secret, customer_id, count, distinct, args.rounds, min(args.clients, count)
            )
            results.append((name, *measured))
        baseline_p99 = percentile(results[0][1], 0.99)
        print("\nlatency from the REST request sent until each subscription received the change")
        print("(after commit: from the REST response; REST write: the request itself)\n")
        header = f"{'scenario':<36} {'samples':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'p99/base':>9}"
        print(f"{header} {'p99 after commit':>17} {'REST write p50':>15}")
        for name, latencies, after_commit, writes in results:
            p99 = percentile(latencies, 0.99)
            print(
                f"{name:<36} {len(latencies):>7} {percentile(latencies, 0.5) * 1000:>6.0f}ms "
                f"{percentile(latencies, 0.95) * 1000:>6.0f}ms {p99 * 1000:>6.0f}ms {max(latencies) * 1000:>6.0f}ms "
                f"{p99 / baseline_p99:>8.2f}x {percentile(after_commit, 0.99) * 1000:>15.0f}ms "
                f"{statistics.median(writes) * 1000:>13.0f}ms"
            )
        worst = max(percentile(latencies, 0.99) for _name, latencies, _after, _writes in results[1:])
        verdict = "met" if worst < 1.0 else "NOT met"
        target = f"target p99 < 1 s with {args.subscriptions} subscriptions"
        print(f"\n{target}: {verdict} (worst p99 {worst * 1000:.0f} ms)")
    finally:
        customers_list.stop_gunicorn(gunicorn)
        customers_list.stop_gunicorn(asgi)


if __name__ == "__main__":
    main()
