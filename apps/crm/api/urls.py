from .views import CustomerViewSet

# collection -> viewset, registered by apps.core.routing.load_collections
collections = {"customers": CustomerViewSet}
