from .views import JobViewSet

# collection -> viewset, registered by apps.core.routing.load_collections
collections = {"jobs": JobViewSet}
