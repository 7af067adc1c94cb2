"""The OpenAPI document (`/v1/openapi.json`), described once for every resource.

`StatesetAutoSchema` knows what `ReadOnlyResourceViewSet` / `ResourceViewSet` answer, so a new
collection is described truly without annotations: lists and searches answer the list envelope
and take the pagination, sort, expand and filter parameters (every declared filter in its `field`
and `field_<op>` spellings, from `filterset_class.operators()`); PUT and PATCH take the same
partial body; batches take `{"data": [...]}` or `{"items": [...]}` and answer 201 with a list or
202 with a job; actions (`POST /<id>/<action>`) answer 200 with the object; every operation lists
the contract's error responses with one `Error` schema, and the `X-Request-ID` and rate-limit
headers. GET sub-collections (`GET /<id>/<name>`) answer the list envelope of their response
serializer, which the action declares with `@extend_schema(responses=...)`. Anything an action
declares with `@extend_schema(responses={code: ...})` is kept as declared.
"""

from django.db import models
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, force_instance

from .jobs import JobSerializer
from .views import ReadOnlyResourceViewSet


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


ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error body of the API; `error` repeats the top level for the docs' shape.",
    "properties": {
        "type": {"type": "string", "example": "invalid_request_error"},
        "code": {"type": "string", "example": "VALIDATION_ERROR"},
        "message": {"type": "string"},
        "param": {"type": "string", "nullable": True},
        "detail": {"nullable": True},
        "request_id": {"type": "string", "nullable": True},
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "request_id": {"type": "string", "nullable": True},
            },
            "required": ["type", "code", "message"],
        },
    },
    "required": ["type", "code", "message", "error"],
}

ERROR_DESCRIPTIONS = {
    "400": "invalid_request_error: BAD_REQUEST, INVALID_FIELD_FORMAT, parameter_unknown, idempotency_error",
    "401": "authentication_error: MISSING_API_KEY, INVALID_API_KEY, EXPIRED_API_KEY, INVALID_TOKEN",
    "403": "permission_error: INSUFFICIENT_PERMISSIONS",
    "404": "not_found_error: RESOURCE_NOT_FOUND (also another organization's object)",
    "409": "invalid_request_error: RESOURCE_CONFLICT, RESOURCE_ALREADY_EXISTS, idempotency_key_in_use",
    "413": "invalid_request_error: REQUEST_TOO_LARGE (bodies over 10 MB)",
    "422": "invalid_request_error: VALIDATION_ERROR, MISSING_REQUIRED_FIELD, INVALID_FIELD_FORMAT",
    "429": "rate_limit_error: RATE_LIMIT_EXCEEDED",
    "500": "api_error: INTERNAL_ERROR",
}

# name -> (schema, description, required). Rate-limit headers are absent when limits are off.
RESPONSE_HEADERS = {
    "X-Request-ID": ({"type": "string"}, "The request's id, also in every error body.", True),
    "X-RateLimit-Limit": ({"type": "integer"}, "Requests allowed in the current window.", False),
    "X-RateLimit-Remaining": ({"type": "integer"}, "Requests left in the current window.", False),
    "X-RateLimit-Reset": ({"type": "integer"}, "Unix time at which the window resets.", False),
}
RETRY_HEADERS = {
    "Retry-After": ({"type": "integer"}, "Seconds to wait before retrying.", True),
    "X-RateLimit-Retry-After": ({"type": "integer"}, "Seconds to wait before retrying.", True),
}

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH")
LIST_ACTIONS = ("list", "search", "list_alias")
CREATE_ACTIONS = ("create", "create_alias")
STANDARD_ACTIONS = (*LIST_ACTIONS, *CREATE_ACTIONS, "retrieve", "update", "partial_update", "destroy", "batch")
MAX_LIMIT = 100
MAX_OFFSET = 10000


class StatesetAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        if self._is_resource_view():
            self._describe_resource_operation(operation)
        self._add_error_responses(operation)
        self._add_response_headers(operation)
        return operation

    def _is_resource_view(self):
        return isinstance(self.view, ReadOnlyResourceViewSet)

    def _get_request_body(self, direction="request"):
        if self.method == "PUT" and self._is_resource_view():
            # PUT is a partial update like PATCH: both take the same body with nothing required.
            self.method = "PATCH"
            try:
                return super()._get_request_body(direction)
            finally:
                self.method = "PUT"
        return super()._get_request_body(direction)

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema and "$ref" not in schema and field.read_only and _shows_nullable_column(field):
            schema["nullable"] = True
        return schema

    # Resources ----------------------------------------------------------------------------

    def _describe_resource_operation(self, operation):
        action = getattr(self.view, "action", None)
        responses = self._declared("get_response_serializers")
        if isinstance(responses, dict):
            return  # the action spelled out its responses
        item = responses if responses is not None else self._get_serializer()
        extra_action = action not in STANDARD_ACTIONS
        answers = getattr(getattr(type(self.view), action or "", None), "answers", None)
        if answers is not None:
            serializer_class, many, query = answers
            if many:
                envelope = self._list_envelope(serializer_class)
                operation["responses"] = {"200": self._json_response(envelope, "A page of the list.")}
                self._add_parameters(operation, self._list_parameters(serializer_class, False))
            else:
                ref = self._object_ref(serializer_class)
                operation["responses"] = {"200": self._json_response(ref, "The answer.")}
            if self.method == "POST" and self._declared("get_request_serializer") is None:
                operation.pop("requestBody", None)  # actions take no body unless they declare one
            required = [
                {**_query(name, {"type": "string", "minLength": 1}, description), "required": True}
                for name, description in query.items()
            ]
            self._add_parameters(operation, required)
            return

        if action in LIST_ACTIONS or (extra_action and self.method == "GET"):
            operation["responses"] = {"200": self._json_response(self._list_envelope(item), "A page of the list.")}
            with_filters = not extra_action
            self._add_parameters(operation, self._list_parameters(item, with_filters, search=action == "search"))
        elif action == "retrieve":
            self._add_parameters(operation, self._expand_parameters(item))
        elif action == "batch":
            operation["requestBody"] = self._batch_request_body(operation)
            operation["responses"] = {
                "201": self._json_response(self._list_envelope(item), "Every object created, in order."),
                "202": self._json_response(self._job_ref(), "A batch over the synchronous limit, as a job."),
            }
        elif extra_action and self.method == "POST":
            operation["responses"] = {"200": self._json_response(self._object_ref(item), "The updated object.")}
            if self._declared("get_request_serializer") is None:
                operation.pop("requestBody", None)  # actions take no body unless they declare one

    def _declared(self, getter_name):
        """What `@extend_schema` declared for this operation, or None (the view's serializer)."""
        declared = getattr(self, getter_name)()
        default = getattr(AutoSchema, getter_name)(self)
        if declared is None or isinstance(declared, dict):
            return declared
        if type(force_instance(declared)) is type(force_instance(default)):
            return None
        return declared

    def _object_ref(self, serializer):
        component = self.resolve_serializer(force_instance(serializer), "response")
        return component.ref

    def _job_ref(self):
        return self._object_ref(JobSerializer)

    def _register(self, name, schema, kind=ResolvedComponent.SCHEMA):
        component = ResolvedComponent(name=name, type=kind, object=name, schema=schema)
        self.registry.register_on_missing(component)
        return component.ref

    def _list_envelope(self, serializer):
        component = self.resolve_serializer(force_instance(serializer), "response")
        return self._register(
            f"{component.name}List",
            {
                "type": "object",
                "properties": {
                    # A pattern, not an enum: drf-spectacular would lift the enum into an "ObjectEnum".
                    "object": {"type": "string", "pattern": "^list$", "example": "list"},
                    "url": {"type": "string"},
                    "data": {"type": "array", "items": component.ref},
                    "has_more": {"type": "boolean"},
                    "next_cursor": {"type": "string", "nullable": True},
                    "total_count": {"type": "integer", "minimum": 0, "description": "Only with include_total=true."},
                },
                "required": ["object", "url", "data", "has_more", "next_cursor"],
            },
        )

    def _batch_request_body(self, operation):
        item = operation["requestBody"]["content"]["application/json"]["schema"]
        name = item["$ref"].rsplit("/", 1)[-1].removesuffix("Request")
        items = {"type": "array", "items": item, "minItems": 1}
        schema = self._register(
            f"{name}BatchRequest",
            {
                "description": "Up to the synchronous limit the batch is created at once (all or nothing); "
                "a larger one becomes a job.",
                "oneOf": [
                    {"type": "object", "properties": {key: items}, "required": [key], "additionalProperties": False}
                    for key in ("data", "items")
                ],
            },
        )
        return {"content": {"application/json": {"schema": schema}}, "required": True}

    # Parameters ---------------------------------------------------------------------------

    def _add_parameters(self, operation, parameters):
        present = {(p["name"], p["in"]) for p in operation.get("parameters", ())}
        fresh = [p for p in parameters if (p["name"], p["in"]) not in present]
        operation["parameters"] = [*operation.get("parameters", ()), *fresh]

    def _list_parameters(self, serializer, with_filters, search=False):
        parameters = [
            _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10}, "Page size."),
            _query("cursor", {"type": "string"}, "The `next_cursor` of the previous page."),
            _query("starting_after", {"type": "string"}, "The page after this object id."),
            _query("ending_before", {"type": "string"}, "The page before this object id."),
            _query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, "Offset paging."),
            _query("page", {"type": "integer", "minimum": 1}, "Deprecated: offset paging by page number."),
            _query("include_total", {"type": "boolean"}, "Add `total_count` (costs a COUNT)."),
        ]
        if with_filters:
            parameters += self._sort_parameters()
        parameters += self._expand_parameters(serializer)
        if search:
            text = {"type": "string"}
            parameters += [_query("query", text, "Text to look for."), _query("q", text, "Alias of `query`.")]
        if with_filters:
            parameters += self._filter_parameters()
        return parameters

    def _sort_parameters(self):
        fields = list(self.view.ordering_fields)
        one = "(?:" + "|".join(fields) + ")"
        spec = {"type": "string", "pattern": f"^-?{one}(?:,-?{one})*$"}
        direction = {"type": "string", "enum": ["asc", "desc"]}
        return [
            _query("sort", spec, "Comma-separated fields, `-` for descending."),
            _query("order_by", spec, "Alias of `sort`."),
            _query("sort_by", {"type": "string", "enum": fields}, "One field, with `sort_order`."),
            _query("sort_order", direction, "Direction for `sort_by`."),
            _query("order_direction", direction, "Direction of the default order."),
        ]

    def _expand_parameters(self, serializer):
        names = sorted(getattr(force_instance(serializer), "expandable_fields", {}))
        if not names:
            return []
        one = "(?:" + "|".join(names) + ")"
        spec = {"type": "string", "pattern": f"^(?:{one}(?:,{one})*)?$"}
        return [
            _query("expand", spec, "Comma-separated fields to expand (dotted paths nest, depth at most 4)."),
            {
                "in": "query",
                "name": "expand[]",
                "schema": {"type": "array", "items": {"type": "string", "enum": names}},
                "style": "form",
                "explode": True,
                "description": "Fields to expand, one per parameter.",
            },
        ]

    def _filter_parameters(self):
        filterset_class = self.view.filterset_class
        if filterset_class is None:
            return []
        model = filterset_class._meta.model
        parameters = []
        for field_name, operators in filterset_class.operators().items():
            model_field = model._meta.get_field(field_name)
            if "eq" in operators:
                parameters.append(
                    _query(
                        field_name,
                        _filter_value_schema(model_field, "eq"),
                        f"Equal to; also `{field_name}_<op>`, `{field_name}[<op>]` with ops: {', '.join(operators)}.",
                    )
                )
            for op in operators:
                parameters.append(_query(f"{field_name}_{op}", _filter_value_schema(model_field, op), OP_NOTES[op]))
        return parameters

    # Errors and headers -------------------------------------------------------------------

    def _add_error_responses(self, operation):
        error_ref = self._register("Error", ERROR_SCHEMA)
        codes = ["400", "401", "403"]
        if "{" in self.path or self.method == "GET":
            codes.append("404")  # an id in the path, or a list's starting_after / ending_before
        if self.method in WRITE_METHODS:
            codes.append("409")
        if "requestBody" in operation:
            codes.append("413")
        if self.method in BODY_METHODS:
            codes.append("422")
        codes += ["429", "500"]
        responses = operation.setdefault("responses", {})
        for code in codes:
            responses.setdefault(code, self._json_response(error_ref, ERROR_DESCRIPTIONS[code]))
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(self._header_refs(RETRY_HEADERS))

    def _add_response_headers(self, operation):
        headers = self._header_refs(RESPONSE_HEADERS)
        for response in operation["responses"].values():
            response["headers"] = {**headers, **response.get("headers", {})}

    def _header_refs(self, headers):
        refs = {}
        for name, (schema, description, required) in headers.items():
            header = {"schema": schema, "description": description}
            if required:
                header["required"] = True
            refs[name] = self._register(name, header, ResolvedComponent.HEADER)
        return refs

    @staticmethod
    def _json_response(schema, description):
        return {"description": description, "content": {"application/json": {"schema": schema}}}


OP_NOTES = {
    "eq": "Equal to.",
    "ne": "Not equal to.",
    "neq": "Not equal to.",
    "gt": "Greater than.",
    "gte": "Greater than or equal to.",
    "lt": "Less than.",
    "lte": "Less than or equal to.",
    "in": "One of a comma-separated list.",
    "nin": "None of a comma-separated list.",
    "like": "Matches a pattern (`%` any text, `_` one character).",
    "ilike": "Matches a pattern, ignoring case.",
    "between": "Within two comma-separated bounds, inclusive.",
    "is_null": "Whether the field is empty.",
}


def _query(name, schema, description):
    return {"in": "query", "name": name, "schema": schema, "description": description}


def _shows_nullable_column(field):
    """A read-only field that shows a nullable column as it is (e.g. a renamed timestamp) shows null."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not isinstance(field.source, str) or "." in field.source:
        return False
    try:
        column = model._meta.get_field(field.source)
    except Exception:  # not a model field: a property or a method
        return False
    return column.concrete and column.null


def _filter_value_schema(model_field, op):
    """A filter's value: never empty (an empty value is a 400, not "no filter")."""
    if op == "is_null":
        return {"type": "boolean"}
    if op in ("in", "nin"):
        return {"type": "string", "pattern": "^[^,]+(,[^,]+)*$"}
    if op == "between":
        return {"type": "string", "pattern": "^[^,]+,[^,]+$"}
    if op in ("like", "ilike"):
        return {"type": "string", "minLength": 1}
    schema = _field_value_schema(model_field)
    if schema.get("type") == "string" and "enum" not in schema:
        schema["minLength"] = 1
    return schema


def _field_value_schema(model_field):
    if model_field.is_relation:
        return {"type": "string"}
    if model_field.choices:
        return {"type": "string", "enum": [str(value) for value, _ in model_field.flatchoices]}
    if isinstance(model_field, models.BooleanField):
        return {"type": "boolean"}
    if isinstance(model_field, (models.IntegerField, models.BigIntegerField, models.PositiveIntegerField)):
        return {"type": "integer"}
    if isinstance(model_field, (models.DecimalField, models.FloatField)):
        return {"type": "number"}
    if isinstance(model_field, models.DateTimeField):
        return {"type": "string", "format": "date-time"}
    if isinstance(model_field, models.DateField):
        return {"type": "string", "format": "date"}
    return {"type": "string"}


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
