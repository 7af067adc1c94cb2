"""Accounts rows of the policy table (apps.core.policy): keys and the audit log are admins'."""

from apps.core.policy import FULL, READ_ONLY, Policy, register

register("accounts.AuditLog", Policy(scope="audit_logs", roles={"admin": READ_ONLY}))
register("accounts.APIKey", Policy(scope="api_keys", roles={"admin": FULL}, actions={"revoke": None}))
