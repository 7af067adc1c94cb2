def canonical_endpoints_only(endpoints, **kwargs):
    """The OpenAPI document lists each operation once, under its canonical `/v1/` path."""
    kept = []
    for path, path_regex, method, callback in endpoints:
        if not path.startswith("/v1/") or "//" in path or path.endswith("/") or any(ch in path for ch in "()?|"):
            continue  # an alias spelling
        if path.endswith(("/list", "/create")):
            continue  # the seeds' suffix forms of list and create
        kept.append((path, path_regex, method, callback))
    return kept


try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class StatesetAuthenticationScheme(OpenApiAuthenticationExtension):
        target_class = "apps.accounts.authentication.StatesetAuthentication"
        name = "ApiKeyBearer"

        def get_security_definition(self, auto_schema):
            return {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "An API key (sk_/rk_/pk_ live or test), a Hasura-style JWT, or a user token from "
                    "POST /v1/auth/token. Also accepted: `Authorization: Token <key>`, `X-API-Key`, `api_key`."
                ),
            }
except ImportError:  # pragma: no cover - drf-spectacular is a pinned dependency
    pass
