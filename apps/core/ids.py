"""Opaque, time-ordered object ids: `<prefix>_<ULID>` (e.g. `cus_01JD6Q...`).

The ULID part sorts by creation time, so ids double as a stable tiebreaker for cursor pages.
Each model names its own module-level default (`new_customer_id`), which migrations can import.
"""

from ulid import ULID


def new_id(prefix):
    return f"{prefix}_{ULID()}"
