from apps.core.jobs import JobSerializer
from apps.core.models import Job
from apps.core.views import ReadOnlyResourceViewSet


class JobViewSet(ReadOnlyResourceViewSet):
    """Asynchronous jobs (large batches)."""

    model = Job
    serializer_class = JobSerializer
