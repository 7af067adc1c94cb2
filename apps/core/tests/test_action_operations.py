"""Every action a collection offers is an operation the policy table declares, so a restricted
key's scope can name it and a row can reserve it to some roles."""

from apps.core import policy
from apps.core.routing import router


def test_every_post_action_is_declared_in_its_policy_row():
    missing = []
    for collection, viewset, _basename in router.canonical.registry:
        label = viewset.queryset.model._meta.label
        row = policy.POLICIES.get(label)
        for extra in viewset.get_extra_actions():
            if extra.detail and "post" in extra.mapping and row is not None:
                if extra.__name__ not in policy.action_names(row.scope):
                    missing.append(f"{collection}.{extra.__name__} ({label})")
    assert not missing, f"actions without a row in their Policy.actions: {missing}"


def test_an_action_falls_back_to_the_role_update_rule():
    row = policy.Policy(scope="things", roles={"user": policy.OWN, "manager": policy.FULL}, actions={"close": None})
    assert policy._rule(row, "user", "close") is policy.OWN_ROWS
    assert policy._rule(row, "anonymous", "close") is None
    reserved = policy.Policy(
        scope="things", roles={"user": policy.OWN, "manager": policy.FULL}, actions={"close": ("manager",)}
    )
    assert policy._rule(reserved, "user", "close") is None
    assert policy._rule(reserved, "manager", "close") is policy.ALL_ROWS
