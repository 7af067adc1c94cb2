"""Opaque, time-ordered object ids: `<prefix>_<ULID>` (e.g. `cus_01JD6Q...`).

The ULID part sorts by creation time, so ids double as a stable tiebreaker for cursor pages.
Each model names its own module-level default (`new_customer_id`), which migrations can import.
Test-mode rows carry the mode in their id (`cus_test_01JD6Q...`) so that whoever reads an id in
a log or a support ticket knows at a glance which mode it belongs to.
"""

from ulid import ULID

TEST_MODE_MARK = "test"
ULID_LENGTH = 26


def new_id(prefix, *, livemode=True):
    if livemode:
        return f"{prefix}_{ULID()}"
    return f"{prefix}_{TEST_MODE_MARK}_{ULID()}"


def mark_test_mode(object_id, prefix):
    """`<prefix>_<ULID>` as `<prefix>_test_<ULID>`. Any other id (already marked, or one a caller
    chose) is returned unchanged: only the form the model's default generates is rewritten."""
    head, _, ulid = str(object_id).rpartition("_")
    if head != prefix or len(ulid) != ULID_LENGTH:
        return object_id
    return f"{prefix}_{TEST_MODE_MARK}_{ulid}"


def id_prefix(generate):
    """The prefix an id default (`new_customer_id`) generates, or None for other defaults."""
    if not callable(generate):
        return None
    head, _, ulid = str(generate()).rpartition("_")
    return head if head and len(ulid) == ULID_LENGTH else None
