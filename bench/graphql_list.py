"""Benchmark: the GraphQL query equivalent to `GET /v1/customers?limit=100` (`POST /graphql`:
100 customers, newest first, with their addresses) under concurrent load, beside the same
`json_agg` baseline endpoint as bench/customers_list.py (`/bench/baseline/customers` in
bench/baseline.py), measured in the same run.

    .venv/bin/python bench/graphql_list.py            # or: make bench
    .venv/bin/python bench/graphql_list.py --duration 5 --rounds 2 [--load python]

The query selects every column GraphQL has of the REST representation: the customer's and its
addresses' model fields (not `object`, `livemode`, or the computed `default_*_address` ids), in
the REST order (`created_at` then `id`, descending). The setup, server, load generators and figures
are bench/customers_list.py's (read its docstring); wrk POSTs the query with a generated Lua
script. Before measuring, the answer must hold the baseline page's 100 customer ids in the same
order (the JSON differs: GraphQL's shape, fewer fields). Prints requests/s, p50/p99, server CPU
per request and the ratio GraphQL/baseline.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import customers_list  # noqa: E402 - after the path is set

REAL_PATH = "/graphql"
BASELINE_PATH = customers_list.BASELINE_PATH

CUSTOMER_COLUMNS = (
    "id email first_name last_name phone sso_id stripe_customer_id activation_date timestamp status "
    "accepts_marketing metadata tags created_at updated_at"
)
ADDRESS_COLUMNS = (
    "id first_name last_name company address_line_1 address_line_2 city province postal_code "
    "country_code phone is_default_shipping is_default_billing"
)
QUERY = (
    "query { customers(limit: 100, order_by: [{created_at: desc}, {id: desc}]) { "
    f"{CUSTOMER_COLUMNS} addresses {{ {ADDRESS_COLUMNS} }} }} }}"
)
BODY = json.dumps({"query": QUERY}).encode()


def check_same_customers(port, headers):
    """The GraphQL answer holds the baseline page's 100 customers, in its order, with their addresses."""
    status, body = customers_list.fetch(port, REAL_PATH, {**headers, "Content-Type": "application/json"}, BODY)
    base_status, base_body = customers_list.fetch(port, BASELINE_PATH, {})
    if status != 200 or base_status != 200:
        raise SystemExit(
            f"expected 200 from both: graphql {status} {body[:300]!r}, baseline {base_status} {base_body[:300]!r}"
        )
    answer = json.loads(body)
    if answer.get("errors") or not isinstance(answer.get("data"), dict):
        raise SystemExit(f"the GraphQL query failed: {body[:500]!r}")
    rows = answer["data"]["customers"]
    base = json.loads(base_body)["data"]
    ids, base_ids = [row["id"] for row in rows], [row["id"] for row in base]
    if ids != base_ids or len(ids) != 100:
        raise SystemExit(f"GraphQL and the baseline return different customers: {len(ids)} vs {len(base_ids)} rows")
    addresses = [[a["id"] for a in row["addresses"]] for row in rows]
    if addresses != [[a["id"] for a in row["addresses"]] for row in base]:
        raise SystemExit("GraphQL and the baseline return different addresses")
    print(
        f"both endpoints: 200, the same {len(ids)} customers and their addresses "
        f"(graphql {len(body)} bytes, baseline {len(base_body)} bytes)"
    )


def main():
    customers_list.run(__doc__, REAL_PATH, BASELINE_PATH, "customers", real_body=BODY, check=check_same_customers)


if __name__ == "__main__":
    main()
