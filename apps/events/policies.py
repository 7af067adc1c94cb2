"""Events rows of the policy table (apps.core.policy): events, webhook endpoints, deliveries."""

from apps.core.policy import ALL_ROWS, FULL, READ_ONLY, Policy, register

register("events.Event", Policy(scope="events", roles={"manager": READ_ONLY, "admin": READ_ONLY}))
register(
    "events.WebhookEndpoint",
    Policy(
        scope="webhooks",
        roles={"admin": FULL},
        actions={"enable": None, "disable": None, "rotate_secret": None, "test": None},
    ),
)
register(
    "events.WebhookDelivery",
    Policy(scope="webhooks", roles={"admin": {"read": ALL_ROWS, "update": ALL_ROWS}}, actions={"retry": None}),
)
