import threading

from apps.accounts.models import APIKey
from apps.core.prepared import PreparedValues


def test_prepared_values_match_the_queryset(organization, secret_key, test_secret_key):
    lookup = PreparedValues(
        lambda kind: (
            APIKey.objects.filter(mode=kind).order_by("id").values("id", "mode", "scopes", "organization__slug")
        )
    )
    for mode in ("live", "test", "none"):
        expected = list(
            APIKey.objects.filter(mode=mode).order_by("id").values("id", "mode", "scopes", "organization__slug")
        )
        assert lookup(mode) == expected
        assert lookup(mode) == expected  # again, from the compiled SQL


def test_prepared_values_compile_per_thread(transactional_db, organization, secret_key):
    lookup = PreparedValues(lambda slug: APIKey.objects.filter(organization__slug=slug).values("id"))
    expected = list(APIKey.objects.filter(organization__slug=organization.slug).values("id"))
    lookup(organization.slug)  # compiled in this thread first
    results = []

    def run():
        results.append(lookup(organization.slug))
        results.append(lookup(organization.slug))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(expected) == 1 and results == [expected] * 6
