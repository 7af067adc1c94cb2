"""`POST /graphql` (also `/v1/graphql`), and GET for queries: the HTTP door to the GraphQL API.

A `StatesetAPIView`, so every credential REST accepts works here the same way (API keys, JWTs,
user tokens, the admin secret with `X-Hasura-Org-Id`/`X-Account-Id`), with the rate limits,
request ids and idempotency claims. Anonymous callers get in; the policy table decides, per root
field, what their role may read. A browser's GET (HTML preferred, no document) shows GraphiQL to a
logged-in staff user (apps.graphql.graphiql) and sends anyone else with no credential to log in.
"""

import orjson
from django.contrib.auth.views import redirect_to_login
from graphql import OperationType
from rest_framework.response import Response

from apps.core.context import Actor
from apps.core.errors import to_api_error
from apps.core.renderers import FastJSONRenderer
from apps.core.views import StatesetAPIView

from .. import graphiql
from ..execution import Context, execute_operation, failure
from ..schema import get_schema
from ..tables import all_tables


class GraphQLView(StatesetAPIView):
    policy_label = None  # each root field asks the policy table for its own table
    allow_anonymous = True
    renderer_classes = [FastJSONRenderer]
    # Not a REST resource: GraphQL describes itself by introspection, not in the OpenAPI schema.
    schema = None

    def perform_content_negotiation(self, request, force=False):
        # Always JSON (a browser's Accept has no JSON in it); the GraphiQL page is a plain response.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, *args, **kwargs):
        if graphiql.wants_page(request._request):
            by_session = not isinstance(request.auth, Actor) or request.auth.credential_type == "session"
            if by_session and graphiql.staff_user(request._request) is not None:
                return graphiql.page(request._request)
            if request.auth is None and not request._request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
        params = request.query_params
        variables = params.get("variables")
        if variables:
            try:
                variables = orjson.loads(variables)
            except orjson.JSONDecodeError:
                return Response(failure("`variables` must be JSON.", "GRAPHQL_VALIDATION_FAILED"))
        # GET may be cached and replayed by anything on the way: queries only, mutations are POSTs.
        return self._run(params.get("query"), variables or None, params.get("operationName"), (OperationType.QUERY,))

    def post(self, request, *args, **kwargs):
        body = request.data
        if not isinstance(body, dict):
            return Response(failure("The body must be a JSON object with `query`.", "GRAPHQL_PARSE_FAILED"))
        return self._run(
            body.get("query"),
            body.get("variables"),
            body.get("operationName"),
            (OperationType.QUERY, OperationType.MUTATION),
        )

    def _run(self, query, variables, operation_name, allowed):
        context = Context(actor=self.actor, tables=all_tables(), request=self.request)
        return Response(
            execute_operation(
                get_schema(self.actor),  # the actor's own schema: only what its role may use
                context,
                query,
                variables,
                operation_name,
                allowed,
                full_schema=get_schema(full=True),
            )
        )

    def handle_exception(self, exc):
        """A refused credential or a rate limit answers in GraphQL's shape, with the REST status
        and headers (Retry-After, rate limits), so GraphQL clients read the code where they look."""
        response = super().handle_exception(exc)
        api_error = to_api_error(exc)
        if api_error is None or getattr(response, "status_code", 200) < 400:
            return response
        body = {
            "errors": [
                {
                    "message": api_error.message,
                    "extensions": {"code": api_error.code, "request_id": getattr(self.request, "request_id", None)},
                }
            ]
        }
        graphql_response = Response(body, status=response.status_code)
        for name, value in response.items():
            if name.lower() != "content-type":
                graphql_response[name] = value
        return graphql_response
