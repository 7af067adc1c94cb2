"""Benchmark: `GET /v1/customers?limit=100` under concurrent load, through gunicorn on PostgreSQL,
beside a baseline endpoint that returns the same page straight from the database (one
`json_agg` query, no DRF: bench/baseline.py), measured in the same run.

    .venv/bin/python bench/customers_list.py            # or: make bench
    .venv/bin/python bench/customers_list.py --duration 5 --rounds 2 [--load python]

What it does:
1. creates the PostgreSQL database `stateset_bench` if missing (BENCH_DATABASE_URL overrides),
   migrates it, seeds an organization `bench` with 300 customers, each with an address, and
   creates a live secret key;
2. starts gunicorn on 127.0.0.1 (a free port) with REDIS_URL on a Redis database of its own
   (BENCH_REDIS_URL, default db 13), rate limiting on (the organization's limits are raised so
   that the load is counted but never refused);
3. checks both endpoints answer 200 with the same page, then alternates them under load
   (warm-up, then --rounds rounds each) with `wrk` (Debian: `apt-get install -y wrk`), or a
   Python load generator in separate processes when wrk is missing;
4. prints requests/s, p50 and p99 for each, the CPU the server (gunicorn workers and their
   PostgreSQL backends) spent per request, and the ratio real/baseline; stops gunicorn.

Figures are comparable only within one run: the baseline absorbs the machine's speed. On a shared
machine requests/s move with whatever else runs; CPU per request moves much less.
"""

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stateset_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
ORGANIZATION_SLUG = "bench"
CUSTOMER_COUNT = 300
REAL_PATH = "/v1/customers?limit=100"
BASELINE_PATH = "/bench/baseline/customers"
# Counted on every request, never reached: the limiter runs as in production without refusing.
RATE_LIMIT_PER_MINUTE = 1_000_000_000
RATE_LIMIT_PER_DAY = 2_000_000_000

# 2 cores, and PostgreSQL, Redis and the load generator share them with the server. The request
# path is CPU-bound Python (the GIL serialises threads inside one process), so processes, not
# threads, give parallelism: one per core, plus one so a core is not idle while a worker waits
# on PostgreSQL or Redis. gthread with 2 threads keeps HTTP keep-alive (sync workers close every
# connection) and overlaps a thread's I/O waits with the other's Python work.
GUNICORN_WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
GUNICORN_THREADS = int(os.environ.get("BENCH_THREADS", "2"))
GUNICORN_WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gthread")


def server_environment(organization_id=""):
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "CACHE_KEY_PREFIX": "stateset-bench",
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "RATELIMIT_ENABLE": "1",
            "LOG_LEVEL": "WARNING",
            "BENCH_ORGANIZATION_ID": organization_id,
            "PYTHONPATH": str(ROOT),
            # WhiteNoise warns about the missing collectstatic directory; irrelevant here.
            "PYTHONWARNINGS": "ignore:No directory at:UserWarning",
        }
    )
    return env


# Setup -------------------------------------------------------------------------------------


def ensure_database():
    import psycopg
    from psycopg import sql

    base, _, name = DATABASE_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def prepare_data(seed=None):
    """Migrate, seed (once) and return (organization id, a new live secret key)."""
    os.environ.update(server_environment())
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from apps.accounts.models import Organization, Plan
    from apps.accounts.services import api_key_create, organization_create
    from apps.core.context import Actor
    from apps.crm.models import Customer, CustomerAddress

    call_command("migrate", verbosity=0, interactive=False)
    organization = Organization.objects.filter(slug=ORGANIZATION_SLUG, livemode=True).first()
    if organization is None:
        organization = organization_create(name="Bench Co", slug=ORGANIZATION_SLUG, plan=Plan.ENTERPRISE)
    Organization.objects.filter(pk__in=[organization.pk, organization.sandbox.pk]).update(
        rate_limit_per_minute=RATE_LIMIT_PER_MINUTE, rate_limit_per_day=RATE_LIMIT_PER_DAY
    )
    missing = CUSTOMER_COUNT - Customer.objects.for_org(organization).count()
    if missing > 0:
        seed_customers(organization, missing, Customer, CustomerAddress, timezone)
    if seed is not None:
        seed(organization)
    actor = Actor.system(organization, "bench")
    _key, secret = api_key_create(organization=organization, kind="secret", mode="live", name="bench", actor=actor)
    from django.db import connections

    connections.close_all()
    return organization.pk, secret


def seed_customers(organization, count, Customer, CustomerAddress, timezone):
    cities = [("Portland", "OR", "97201"), ("Austin", "TX", "73301"), ("Chicago", "IL", "60601")]
    statuses = ["active", "active", "active", "prospect", "inactive"]
    start = Customer.objects.for_org(organization).count()
    customers, addresses = [], []
    for offset in range(count):
        n = start + offset
        first, last = f"Ada{n}", f"Lovelace{n}"
        customer = Customer(
            organization=organization,
            created_by="bench",
            email=f"customer{n}@example.com",
            first_name=first,
            last_name=last,
            phone=f"+1503555{n:04d}",
            sso_id=f"sso_{n:06d}",
            stripe_customer_id=f"cus_stripe{n:08d}",
            activation_date=timezone.now() if n % 3 else None,
            status=statuses[n % len(statuses)],
            accepts_marketing=bool(n % 2),
            metadata={"segment": "retail" if n % 2 else "wholesale", "source": "bench", "score": n % 97},
            tags=sorted({"bench", "vip" if n % 5 == 0 else "standard"}),
        )
        city, province, postal_code = cities[n % len(cities)]
        customers.append(customer)
        addresses.append(
            CustomerAddress(
                organization=organization,
                customer=customer,
                created_by="bench",
                first_name=first,
                last_name=last,
                company="Analytical Engines Ltd" if n % 4 == 0 else "",
                address_line_1=f"{100 + n} Main Street",
                address_line_2="Suite 5" if n % 6 == 0 else "",
                city=city,
                province=province,
                postal_code=postal_code,
                country_code="US",
                phone=f"+1503555{n:04d}",
                is_default_shipping=True,
                is_default_billing=True,
            )
        )
    Customer.objects.bulk_create(customers)
    CustomerAddress.objects.bulk_create(addresses)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Customer._meta.db_table}, {CustomerAddress._meta.db_table}")
    print(f"seeded {count} customers with an address each")


# Server ------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port, organization_id):
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    command = [
        str(gunicorn if gunicorn.exists() else shutil.which("gunicorn") or "gunicorn"),
        "stateset.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(GUNICORN_WORKERS),
        "--worker-class",
        GUNICORN_WORKER_CLASS,
        "--threads",
        str(GUNICORN_THREADS),
        "--backlog",
        "2048",
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    process = subprocess.Popen(command, env=server_environment(organization_id), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {process.returncode}")
        try:
            status, _body = fetch(port, "/health", {})
            if status in (200, 503):
                return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(process)
    raise SystemExit("gunicorn did not answer /health within 30 s")


def stop_gunicorn(process):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def fetch(port, path, headers, body=None):
    """GET `path`, or POST `body` (bytes) to it when given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET" if body is None else "POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check_same_page(port, headers, real_path=REAL_PATH, baseline_path=BASELINE_PATH, noun="customers"):
    import json

    real_status, real_body = fetch(port, real_path, headers)
    base_status, base_body = fetch(port, baseline_path, {})
    if real_status != 200 or base_status != 200:
        raise SystemExit(
            f"expected 200 from both: real {real_status} {real_body[:300]!r}, "
            f"baseline {base_status} {base_body[:300]!r}"
        )
    real, base = json.loads(real_body), json.loads(base_body)
    real_ids = [row["id"] for row in real["data"]]
    base_ids = [row["id"] for row in base["data"]]
    if real_ids != base_ids or len(real_ids) != 100:
        raise SystemExit(f"the endpoints return different pages: {len(real_ids)} vs {len(base_ids)} rows")
    identical = real == base
    if not identical:
        for key in real:
            if real[key] != base.get(key):
                if key == "data":
                    row = next(i for i, (a, b) in enumerate(zip(real["data"], base["data"], strict=True)) if a != b)
                    print(f"first differing row {row}:\n  real     {real['data'][row]}\n  baseline {base['data'][row]}")
                else:
                    print(f"{key}: real {real[key]!r}, baseline {base.get(key)!r}")
        raise SystemExit("the baseline's page differs from the real one")
    print(
        f"both endpoints: 200, the same {len(real_ids)} {noun}, identical JSON "
        f"(real {len(real_body)} bytes, baseline {len(base_body)} bytes)"
    )


# Server CPU --------------------------------------------------------------------------------
# The machine is shared, so requests/s move with whatever else runs. The CPU the server spends per
# request (gunicorn workers + their PostgreSQL backends, read from /proc) barely does: it is
# printed beside the throughput as the steadier figure.

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def server_pids(master_pid, database_name):
    """The gunicorn workers and the PostgreSQL backends serving the benchmark database."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == master_pid:
                pids.append(int(entry))
    try:
        import psycopg

        base, _, _name = DATABASE_URL.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database_name]
            ).fetchall()
        pids.extend(pid for (pid,) in rows)
    except Exception:  # noqa: BLE001 - the CPU figure is optional
        pass
    return pids


def cpu_snapshot(pids):
    return {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}


def cpu_used(before, after):
    """CPU between the snapshots; a process that appeared in between (a PostgreSQL backend for a
    connection Django reopened after CONN_MAX_AGE) counts whole."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# Load --------------------------------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(port, path, headers, duration, connections, body=None):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body is not None:
            # A POST body needs a Lua script; a Lua long string takes the bytes as they are.
            text = body.decode()
            level = "=" * (max((len(m) for m in re.findall(r"\](=*)\]", text)), default=0) + 1)
            script.write(f'wrk.method = "POST"\nwrk.body = [{level}[{text}]{level}]\n')
            script.flush()
            command += ["-s", script.name]
        command.append(f"http://127.0.0.1:{port}{path}")
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{errors.group(1)} responses were not 2xx:\n{output}")
    socket_errors = re.search(r"Socket errors: (.*)", output)
    requests_per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    note = socket_errors.group(1) if socket_errors else ""
    return {"rps": requests_per_second, "p50": p50, "p99": p99, "requests": requests, "note": note}


def _python_client(port, path, headers, start, deadline, queue, body=None):
    latencies, failures = [], 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.time() < start:
        time.sleep(0.01)
    while time.time() < deadline:
        started = time.perf_counter()
        try:
            conn.request("GET" if body is None else "POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
        except OSError:
            conn.close()
            ok = False
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            failures += 1
    conn.close()
    queue.put((latencies, failures))


def run_python_load(port, path, headers, duration, connections, body=None):
    """One process per connection (the GIL would serialise threads), each a keep-alive loop."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # Every client starts at the same moment, once all processes are up (spawning takes a while).
    start = time.time() + 2.0
    deadline = start + duration
    processes = [
        context.Process(target=_python_client, args=(port, path, headers, start, deadline, queue, body))
        for _ in range(connections)
    ]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    latencies = sorted(value for result, _ in results for value in result)
    failures = sum(failed for _, failed in results)
    if failures:
        raise SystemExit(f"{failures} requests to {path} failed")

    def percentile(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "rps": len(latencies) / duration,
        "p50": percentile(0.50),
        "p99": percentile(0.99),
        "requests": len(latencies),
        "note": "",
    }


def main():
    run(__doc__, REAL_PATH, BASELINE_PATH, "customers")


def run(doc, real_path, baseline_path, noun, seed=None, real_body=None, check=check_same_page):
    """Parse the command line, prepare the data (`seed(organization)` adds a benchmark's own
    rows), then measure `real_path` beside `baseline_path` and print the figures. With
    `real_body` (bytes), the real endpoint is POSTed that body (JSON); `check(port, headers)`
    replaces the same-page check (check_same_page with the paths and noun)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per endpoint (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per endpoint (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument(
        "--load", choices=("auto", "wrk", "python"), default="auto", help="load generator (default: wrk if installed)"
    )
    args = parser.parse_args()

    if args.load == "python":
        load, generator = run_python_load, "python processes"
    elif shutil.which("wrk"):
        load, generator = run_wrk, "wrk -t2"
    elif args.load == "wrk":
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    else:
        print(
            "wrk not found: using the Python load generator (one process per connection; it takes CPU "
            "from the server, so figures are lower). Install wrk for better figures:\n"
            "    apt-get update && apt-get install -y wrk"
        )
        load, generator = run_python_load, "python processes"

    ensure_database()
    organization_id, secret = prepare_data(seed)
    headers = {"Authorization": f"Bearer {secret}"}
    port = free_port()
    server = None
    try:
        server = start_gunicorn(port, organization_id)
        print(
            f"gunicorn {GUNICORN_WORKER_CLASS}: {GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads on "
            f"127.0.0.1:{port}; PostgreSQL {DATABASE_URL.rpartition('/')[2]}, Redis {REDIS_URL.rpartition('/')[2]}; "
            f"load: {generator}, {args.connections} connections, {args.rounds} x {args.duration}s per endpoint"
        )
        if check is check_same_page:
            check_same_page(port, headers, real_path, baseline_path, noun)
        else:
            check(port, headers)
        real_headers = headers if real_body is None else {**headers, "Content-Type": "application/json"}
        endpoints = {"real": (real_path, real_headers, real_body), "baseline": (baseline_path, {}, None)}
        for path, endpoint_headers, body in endpoints.values():
            load(port, path, endpoint_headers, args.warmup, args.connections, body)
        results = {name: [] for name in endpoints}
        database_name = DATABASE_URL.rpartition("/")[2]
        for round_number in range(1, args.rounds + 1):
            for name, (path, endpoint_headers, body) in endpoints.items():
                before = cpu_snapshot(server_pids(server.pid, database_name))
                result = load(port, path, endpoint_headers, args.duration, args.connections, body)
                after = cpu_snapshot(server_pids(server.pid, database_name))
                result["cpu_ms"] = cpu_used(before, after) * 1000 / max(1, result["requests"])
                results[name].append(result)
                note = f"  ({result['note']})" if result["note"] else ""
                print(
                    f"round {round_number} {name:<8} {result['rps']:8.1f} req/s  "
                    f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  "
                    f"server CPU {result['cpu_ms']:5.2f} ms/request{note}"
                )
        summary = {
            name: {
                "rps": statistics.mean(r["rps"] for r in rounds),
                "p50": statistics.median(r["p50"] for r in rounds),
                "p99": statistics.median(r["p99"] for r in rounds),
                "cpu_ms": statistics.median(r["cpu_ms"] for r in rounds),
            }
            for name, rounds in results.items()
        }
        print()
        print(f"{'endpoint':<48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
        for name, path in (("real", real_path), ("baseline", baseline_path + " (json_agg)")):
            figures = summary[name]
            print(
                f"{name + ' ' + path:<48} {figures['rps']:8.1f} {figures['p50']:8.2f} {figures['p99']:8.2f} "
                f"{figures['cpu_ms']:11.2f}"
            )
        ratio = summary["real"]["rps"] / summary["baseline"]["rps"]
        paired = statistics.median(
            real["rps"] / base["rps"] for real, base in zip(results["real"], results["baseline"], strict=True)
        )
        cpu_ratio = summary["baseline"]["cpu_ms"] / summary["real"]["cpu_ms"] if summary["real"]["cpu_ms"] else 0
        print(
            f"real/baseline throughput: {ratio:.0%} (median of the rounds' ratios {paired:.0%}; "
            f"server CPU per request, baseline/real: {cpu_ratio:.0%}) - target: at least 70%"
        )
    finally:
        stop_gunicorn(server)


if __name__ == "__main__":
    main()
