"""The one alias table, and the router that mounts every collection under all its spellings.

Canonical paths are `/v1/<plural_snake_case>` without a trailing slash; every alias, the
trailing-slash form and the `/api/v1/` prefix resolve to the same handlers without redirecting
(the official Python client does not follow redirects).
"""

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


router = ApiRouter()
