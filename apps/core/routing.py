"""The one alias table, and the router that mounts every collection under all its spellings.

One way to add a collection: the app's `api/urls.py` declares `collections = {"customers":
CustomerViewSet}`; `load_collections()` (called by stateset/urls.py) walks the project's installed
apps and registers each app's collections. Nothing registers routes as an import side effect.

Canonical paths are `/v1/<plural_snake_case>` without a trailing slash; every alias, the
trailing-slash form and the `/api/v1/` prefix resolve to the same handlers without redirecting
(the official Python client does not follow redirects).
"""

import threading
from importlib import import_module

from django.apps import apps as django_apps
from rest_framework.routers import SimpleRouter

# canonical collection -> the other spellings StateSet clients and docs use
COLLECTION_ALIASES = {
    "customers": ("customer",),
    "orders": ("order",),
    "returns": ("return",),
    "return_line_items": ("returnitems", "return-line-items", "return_items", "return_line_item"),
    "warranties": ("warranty",),
    "warranty_line_items": ("warrantyitems", "warranty-line-items", "warranty_items", "warranty_line_item"),
    "wholesale_orders": ("wholesale-orders", "wholesaleorders", "wholesale_order"),
    "inventory_items": ("inventory", "inventoryitems", "inventory-items", "inventory_item"),
    "packing_lists": ("packinglists", "packing-lists", "packing_list"),
    "packing_list_items": ("packinglistitems", "packing-list-items", "packing_list_item"),
    "purchase_orders": ("purchase-orders", "purchaseorders", "purchase_order"),
    "bill_of_materials": ("billofmaterials", "boms", "bill-of-materials", "bom"),
    "bill_of_materials_line_items": (
        "billofmaterialsitems",
        "bill-of-materials-line-items",
        "bom_line_items",
    ),
    "work_orders": ("work-orders", "workorders", "work_order", "workorder"),
    "work_order_line_items": ("workorderitems", "work-order-line-items", "work_order_items"),
    "manufacture_orders": ("manufactureorders", "manufacturerorders", "manufacture-orders", "manufacture_order"),
    "manufacture_order_line_items": (
        "manufactureorderitems",
        "manufacture-order-line-items",
        "manufacture_order_items",
    ),
    "cycle_counts": ("cycle-counts", "cyclecounts", "cycle_count"),
    "cases": ("cases_tickets", "case"),
    "leads": ("lead",),
    "webhooks": ("webhook_endpoints", "webhook-endpoints"),
    "webhook_deliveries": ("webhook-deliveries",),
    "audit_logs": ("audit-logs", "auditlogs"),
    "api_keys": ("api-keys", "apikeys"),
}


def spellings(canonical):
    return (canonical, *COLLECTION_ALIASES.get(canonical, ()))


class ApiRouter:
    def __init__(self):
        self.canonical = SimpleRouter(trailing_slash=False)
        self.aliased = SimpleRouter()
        self.aliased.trailing_slash = "/?"  # the constructor only knows "/" or ""

    def register(self, collection, viewset):
        self.canonical.register(collection, viewset, basename=collection)
        pattern = "(?:" + "|".join(sorted(spellings(collection), key=len, reverse=True)) + ")"
        self.aliased.register(pattern, viewset, basename=f"{collection}-alias")
        # The viewset learns its public name: jobs it queues are named after the collection
        # (`customers.batch_create`), which outlives any renaming of the class.
        viewset.collection = collection
        register_jobs = getattr(viewset, "register_jobs", None)
        if register_jobs is not None:
            register_jobs(collection)


router = ApiRouter()

# Only the project's own apps: a third-party package's `api.urls` means something else.
PROJECT_APPS_PREFIX = "apps."
_load_lock = threading.RLock()
_loaded = False


def app_collections(app_name):
    """The `collections` an app's api/urls.py declares, or {} for an app without one."""
    module_name = f"{app_name}.api.urls"
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in (module_name, f"{app_name}.api"):
            raise  # the module exists but something it imports does not
        return {}
    return getattr(module, "collections", {})


def load_collections():
    """Register every installed project app's collections with the router, once per process
    (the URLconf calls it; so does a worker that needs a collection's job handler)."""
    global _loaded
    with _load_lock:
        if _loaded:
            return router
        for app_config in django_apps.get_app_configs():
            if app_config.name.startswith(PROJECT_APPS_PREFIX):
                for collection, viewset in app_collections(app_config.name).items():
                    router.register(collection, viewset)
        _loaded = True
    return router
