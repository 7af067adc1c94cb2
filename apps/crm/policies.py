"""CRM rows of the policy table (apps.core.policy): who may do what to customers."""

from apps.core.policy import FULL, OWN, Policy, register

register(
    "crm.Customer",
    Policy(
        scope="customers",
        roles={"user": OWN, "manager": FULL, "admin": FULL},
        # Suspending shuts a customer out: managers and admins only, never the `user` role,
        # even on the rows it created. The other moves go with "update".
        actions={"activate": None, "deactivate": None, "suspend": ("manager", "admin")},
    ),
)
register("crm.CustomerAddress", Policy(scope="customers", roles={"user": OWN, "manager": FULL, "admin": FULL}))
