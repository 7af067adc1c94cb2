"""The API machinery every resource reuses.

`StatesetAPIView` (any endpoint): authentication, rate limits with their headers, the policy
check, idempotency keys, contract errors.
`ResourceViewSet` (a collection): list (filters, sort, expand, cursor/offset pages), retrieve,
create, update (PUT and PATCH are both partial), delete, search, batch and the seeds' `/list`
and `/create` forms. A resource declares `queryset`, `serializer_class`, `filterset_class`,
`ordering_fields`, `search_fields` and its services; the policy table (apps.core.policy) says who
may do what.
"""

import sys

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSetMixin

from . import idempotency, policy, ratelimit
from .context import Actor, resolve_anonymous_actor
from .errors import (
    APIError,
    BadRequest,
    NotFound,
    UnknownParameter,
    ValidationFailed,
    exception_handler,
    to_api_error,
)
from .filters import apply_filters, normalize_filter_params, parse_sort, search_condition
from .history import (
    STATE_ACTIONS,
    StatusChangeFilterSet,
    StatusChangeSerializer,
    TransitionCheckSerializer,
    transition_check,
)
from .jobs import JobSerializer, batch_create_job_start, register_job
from .models import StatusChange
from .pagination import PAGINATION_PARAMS, paginate, sort_columns
from .parsers import check_query_params
from .rows import cached_row_builder, report_missing_row_builder
from .serializers import parse_expand, scoped_related_querysets
from .states import machine_for, status_history

SORT_PARAMS = frozenset({"sort", "order_by", "sort_by", "sort_order", "order_direction"})
EXPAND_PARAMS = frozenset({"expand", "expand[]"})
# A credential, not a filter: accepted wherever query parameters are checked.
CREDENTIAL_PARAMS = frozenset({"api_key"})
LIST_PARAMS = PAGINATION_PARAMS | SORT_PARAMS | EXPAND_PARAMS | CREDENTIAL_PARAMS


def answers(serializer_class, *, many=False, query=None):
    """Tells the OpenAPI schema (apps.core.schema) what an extra action answers when it is not
    the resource's own object: `many` a list envelope of `serializer_class`, else one of them;
    `query` the required query parameters, {name: description}."""

    def mark(function):
        function.answers = (serializer_class, many, dict(query or {}))
        return function

    return mark


class TransitionInputSerializer(serializers.Serializer):
    """The optional body of a status move: `{"reason": "..."}`, kept in the status history."""

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        for key in data:
            if key != "reason":
                raise UnknownParameter(f"Received unknown parameter: {key}", param=key)
        if "reason" in data and data["reason"] is not None and not isinstance(data["reason"], str):
            raise ValidationFailed("reason: give the reason as a string.", param="reason")
        return super().to_internal_value(data)


class StatesetAPIView(APIView):
    """Base for every API endpoint."""

    # The policy table's row for this endpoint ("app.Model"); None: the view checks by itself.
    policy_label = None
    allow_anonymous = False

    def get_exception_handler(self):
        return exception_handler

    @property
    def actor(self):
        if getattr(self, "actor_override", None) is not None:
            return self.actor_override
        actor = self.request.auth
        if isinstance(actor, Actor):
            return actor
        return self.anonymous_actor()

    def anonymous_actor(self):
        if not hasattr(self, "_anonymous_actor"):
            self._anonymous_actor = resolve_anonymous_actor(self.request)
        return self._anonymous_actor

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        neg = self.perform_content_negotiation(request)
        request.accepted_renderer, request.accepted_media_type = neg
        version, scheme = self.determine_version(request, *args, **kwargs)
        request.version, request.versioning_scheme = version, scheme
        try:
            request.user  # noqa: B018 - runs authentication
        except APIError:
            request._rate_limit_headers = ratelimit.check(request, None, None)
            raise
        actor = request.auth if isinstance(request.auth, Actor) else None
        organization = actor.organization if actor else None
        request._rate_limit_headers = ratelimit.check(request, actor, organization)
        check_query_params(request.query_params)
        self.check_permissions(request)
        self._idempotency_record = None
        if actor is not None:
            self._idempotency_record = idempotency.claim(request, actor)
        if self._idempotency_record is not None:
            # The work and the stored response commit together: a crash in between cannot leave
            # a committed change whose key would later be taken as unused.
            self._idempotency_atomic = transaction.atomic()
            self._idempotency_atomic.__enter__()

    def check_permissions(self, request):
        if self.policy_label is None:
            if not isinstance(request.auth, Actor) and not self.allow_anonymous:
                raise APIError("No API key provided.", code="MISSING_API_KEY", status=401)
            return
        policy.authorize(self.actor, self.policy_label, self.operation_for(request))

    def operation_for(self, request):
        return "read" if request.method in ("GET", "HEAD", "OPTIONS") else "update"

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency_record", None)
        if record is not None:
            if isinstance(response, Response) and not response.is_rendered:
                response.render()
            idempotency.complete(record, response)
            self._idempotency_record = None
            self._close_idempotency_atomic(None, None, None)
        for name, value in getattr(request, "_rate_limit_headers", {}).items():
            response[name] = value
        return response

    def _close_idempotency_atomic(self, *exc_info):
        atomic = getattr(self, "_idempotency_atomic", None)
        if atomic is not None:
            self._idempotency_atomic = None
            atomic.__exit__(*exc_info)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            try:
                # Only left open when finalizing itself failed: roll the work back.
                self._close_idempotency_atomic(*sys.exc_info())
            finally:
                ratelimit.release(getattr(self, "request", None))

    def get_serializer_context(self):
        return {"request": self.request, "view": self, "actor": self.actor}


class ReadOnlyResourceViewSet(ViewSetMixin, StatesetAPIView):
    """A collection's reads: list, retrieve, search and the `/list` form."""

    model = None  # the resource's model: its policy label and envelope name
    # The app's `<entity>_list(*, organization)`: the organization's rows with what the API reads.
    # Without one, the rows are `model.objects.for_org(organization)`.
    selector = None
    # Derived from `model` (DRF and drf-spectacular read `queryset.model`); rows never come from it.
    queryset = None
    serializer_class = None
    filterset_class = None
    ordering_fields = ("created_at",)
    default_ordering = ("created_at", True)
    search_fields = ()
    lookup_value_regex = r"[A-Za-z0-9_\-]+"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "model" not in cls.__dict__ and "queryset" in cls.__dict__ and cls.queryset is not None:
            cls.model = cls.queryset.model
        elif "model" in cls.__dict__ and "queryset" not in cls.__dict__ and cls.model is not None:
            cls.queryset = cls.model._default_manager.none()

    @property
    def policy_label(self):
        return self.model._meta.label

    def operation_for(self, request):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return "read"
        action_name = getattr(self, "action", None)
        if action_name in ("create", "create_alias", "batch") or request.method == "POST" and not self.kwargs.get("pk"):
            return "create"
        if request.method == "DELETE":
            return "delete"
        if request.method == "POST" and action_name:
            # An action on one object is an operation of its own in the policy table (`suspend`,
            # `revoke`): the table can reserve it to some roles, a key's scope can name it.
            return action_name
        return "update"

    @classmethod
    def get_extra_actions(cls):
        """`history` and `can_transition` exist only where the model has a state machine."""
        actions = super().get_extra_actions()
        if cls.queryset is None or machine_for(cls.queryset.model) is None:
            actions = [extra for extra in actions if extra.__name__ not in STATE_ACTIONS]
        return actions

    # Querysets ----------------------------------------------------------------------------

    def base_queryset(self, operation="read"):
        """The organization's rows this actor may `operation`, with what the serializer needs."""
        return policy.scope_queryset(self.actor, self.policy_label, operation, self.get_queryset())

    def get_queryset(self):
        """The actor's organization's rows (the policy then narrows them), through the selector."""
        organization = self.actor.organization if self.actor is not None else None
        if self.selector is not None:
            return self.selector(organization=organization)
        return self.model._default_manager.for_org(organization)

    def get_object(self, operation="read"):
        obj = self.base_queryset(operation).filter(pk=self.kwargs["pk"]).first()
        if obj is None:
            raise NotFound(
                f"No such {getattr(self.serializer_class, 'object_name', None) or 'object'}: '{self.kwargs['pk']}'",
                param="id",
            )
        return obj

    def get_serializer(self, *args, **kwargs):
        kwargs.setdefault("context", self.get_serializer_context())
        serializer = self.serializer_class(*args, **kwargs)
        actor = self.actor
        if "data" in kwargs and actor is not None and actor.organization is not None:
            scoped_related_querysets(serializer, actor.organization)
        return serializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["expand"] = parse_expand(self.request.query_params) if self.request is not None else {}
        return context

    def check_query_params(self, allowed):
        for key in self.request.query_params.keys():
            if key not in allowed and key not in CREDENTIAL_PARAMS:
                raise UnknownParameter(f"Received unknown parameter: {key}", param=key)

    def serialize(self, instance, status=http_status.HTTP_200_OK):
        return Response(self.get_serializer(instance).data, status=status)

    # Reads --------------------------------------------------------------------------------

    def list(self, request, *args, **kwargs):
        return self._list(request, self.base_queryset("read"))

    def _list(self, request, queryset, extra_params=frozenset(), envelope_key=None):
        params = request.query_params
        filters = normalize_filter_params(params, self.filterset_class, LIST_PARAMS | extra_params)
        if filters:
            queryset = apply_filters(queryset, filters, self.filterset_class)
        ordering = parse_sort(params, self.ordering_fields, self.default_ordering)
        ordering.append(("pk", ordering[-1][1]))
        anchors = lambda: self.base_queryset("read")  # noqa: E731 - only starting_after/ending_before need it
        context = self.get_serializer_context()
        builder = cached_row_builder(
            self.serializer_class, context["expand"], queryset, lambda: self.get_serializer(context=context)
        )
        if builder is not None:
            rows = builder.values(queryset, sort_columns(queryset.model, ordering))
            page = paginate(rows, params, ordering, anchor_queryset=anchors)
            data = builder.represent(page.items, livemode=self.actor.organization.livemode)
        else:
            report_missing_row_builder(self.serializer_class, context["expand"])
            page = paginate(queryset, params, ordering, anchor_queryset=anchors)
            data = self.get_serializer(page.items, many=True, context=context).data
        body = {
            "object": "list",
            "url": request.path,
            "data": data,
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
        if page.total_count is not None:
            body["total_count"] = page.total_count
        if envelope_key:
            body[envelope_key] = body["data"]
        return Response(body)

    def retrieve(self, request, *args, **kwargs):
        self.check_query_params(EXPAND_PARAMS)
        return self.serialize(self.get_object("read"))

    @action(detail=False, methods=["get"], url_path="search")
    def search(self, request, *args, **kwargs):
        query = (request.query_params.get("query") or request.query_params.get("q") or "").strip()
        queryset = self.base_queryset("read")
        if query:
            queryset = queryset.filter(search_condition(query, self.search_fields))
        return self._list(request, queryset, extra_params=frozenset({"query", "q"}))

    @action(detail=False, methods=["get"], url_path="list")
    def list_alias(self, request, *args, **kwargs):
        """The seeds' `GET /v1/<c>/list` form; the list also appears under the collection's name."""
        return self._list(request, self.base_queryset("read"), envelope_key=self.envelope_name())

    def envelope_name(self):
        return self.model._meta.verbose_name_plural.replace(" ", "_")

    # State machines (apps.core.states, apps.core.history) ----------------------------------

    @action(detail=True, methods=["get"], url_path="history")
    @answers(StatusChangeSerializer, many=True)
    def history(self, request, *args, **kwargs):
        """The object's status changes, newest first."""
        view = history_view(self, self.get_object("read"))
        return view._list(request, view.base_queryset("read"))

    @action(detail=True, methods=["get"], url_path="can_transition")
    @answers(TransitionCheckSerializer, query={"target": "The status to check."})
    def can_transition(self, request, *args, **kwargs):
        self.check_query_params(frozenset({"target"}))
        return Response(transition_check(self.get_object("read"), request.query_params.get("target", "")))

    def run_transition(self, service):
        """An action that moves one object through its state machine, by
        `service(*, organization, actor, instance, reason)`: the body is optional and may carry a
        `reason` (kept in the history); answers the whole object."""
        body = TransitionInputSerializer(data=self.request_data())
        body.is_valid(raise_exception=True)
        reason = body.validated_data.get("reason") or None
        instance = self.get_object(self.action)
        return self.serialize(
            service(organization=self.actor.organization, actor=self.actor, instance=instance, reason=reason)
        )


def history_view(parent, obj):
    """A read-only collection of `obj`'s status changes acting for the parent view's request: it
    reuses the list machinery (paging, sort, envelope) over rows the parent already authorized."""

    class StatusHistoryView(ReadOnlyResourceViewSet):
        queryset = StatusChange.objects.all()
        serializer_class = StatusChangeSerializer
        filterset_class = StatusChangeFilterSet

        def base_queryset(self, operation="read"):
            # Reading the object is the permission; its history needs no policy row of its own.
            return status_history(obj)

    view = StatusHistoryView(request=parent.request, kwargs={}, format_kwarg=None, action="list")
    view.actor_override = parent.actor
    return view


class ResourceViewSet(ReadOnlyResourceViewSet):
    """A collection with writes through its services:
    create(*, organization, actor, data), update(*, organization, actor, instance, data),
    delete(*, organization, actor, instance)."""

    create_service = None
    update_service = None
    delete_service = None
    collection = None  # the canonical collection name, set by the router (apps.core.routing)

    # Writes -------------------------------------------------------------------------------

    def validated_input(self, data, instance=None):
        serializer = self.get_serializer(instance, data=data if data is not None else {}, partial=instance is not None)
        serializer.is_valid(raise_exception=True)
        policy.check_writable(
            self.actor, self.policy_label, "update" if instance is not None else "create", serializer.validated_data
        )
        return serializer.validated_data

    def request_data(self):
        data = self.request.data
        if data is None:  # a body of JSON `null`; no body at all reads as an empty object
            raise BadRequest("The request body must be a JSON object, not null.")
        if hasattr(data, "dict"):
            data = data.dict()
        return data

    def create(self, request, *args, **kwargs):
        data = self.validated_input(self.request_data())
        instance = self.create_service(organization=self.actor.organization, actor=self.actor, data=data)
        return self.serialize(instance, status=http_status.HTTP_201_CREATED)

    @action(detail=False, methods=["post"], url_path="create")
    def create_alias(self, request, *args, **kwargs):
        return self.create(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        instance = self.get_object("update")
        data = self.validated_input(self.request_data(), instance=instance)
        instance = self.update_service(
            organization=self.actor.organization, actor=self.actor, instance=instance, data=data
        )
        return self.serialize(instance)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        instance = self.get_object("delete")
        self.delete_service(organization=self.actor.organization, actor=self.actor, instance=instance)
        return HttpResponse(status=http_status.HTTP_204_NO_CONTENT)

    @action(detail=False, methods=["post"], url_path="batch")
    def batch(self, request, *args, **kwargs):
        """Create up to 1000 objects, all or nothing; larger batches run as a job."""
        body = self.request_data()
        items = body
        if isinstance(body, dict):
            for key in body:
                if key not in ("items", "data"):
                    raise UnknownParameter(f"Received unknown parameter: {key}", param=key)
            if len(body) > 1:
                raise BadRequest("Send the batch as `items` or as `data`, not both.", param="data")
            items = body.get("items", body.get("data"))
        if not isinstance(items, list) or not items:
            raise BadRequest("The batch body needs a non-empty list `items`.", param="items")
        if len(items) > settings.BATCH_SYNC_LIMIT:
            job = batch_create_job_start(
                organization=self.actor.organization, actor=self.actor, name=self.batch_job_name(), items=items
            )
            return Response(
                JobSerializer(job, context=self.get_serializer_context()).data, status=http_status.HTTP_202_ACCEPTED
            )
        created = self.batch_create(items)
        return Response(
            {
                "object": "list",
                "url": request.path,
                "data": self.get_serializer(created, many=True).data,
                "has_more": False,
                "next_cursor": None,
            },
            status=http_status.HTTP_201_CREATED,
        )

    def batch_create(self, items):
        """Validate every item first, then create them in one transaction."""
        validated, errors = [], {}
        for index, item in enumerate(items):
            try:
                validated.append(self.validated_input(item))
            except APIError as exc:
                errors[str(index)] = {"code": exc.code, "message": exc.message, "param": exc.param}
            except Exception as exc:  # DRF ValidationError
                api_error = to_api_error(exc)
                if api_error is None:
                    raise
                errors[str(index)] = {"code": api_error.code, "message": api_error.message, "param": api_error.param}
        if errors:
            first = next(iter(errors))
            raise ValidationFailed(
                f"Item {first}: {errors[first]['message']} (nothing was created).",
                param=f"items[{first}]",
                detail=errors,
            )
        with transaction.atomic():
            return [
                self.create_service(organization=self.actor.organization, actor=self.actor, data=data)
                for data in validated
            ]

    @classmethod
    def batch_job_name(cls):
        return f"{cls.collection}.batch_create"

    @classmethod
    def register_jobs(cls, collection):
        """Called by the router: a large batch runs later as the job `<collection>.batch_create`,
        found by that name, so renaming or moving this class never breaks a queued job."""
        if cls.create_service is not None:
            register_job(f"{collection}.batch_create", cls.run_batch_job)

    @classmethod
    def run_batch_job(cls, *, organization, actor, items):
        """The batch job's handler: the same validation (serializer, writable fields, scoped
        related objects) and create service as a synchronous batch, for `actor`."""
        view = cls(request=None, format_kwarg=None, kwargs={}, action="batch")
        view.actor_override = actor
        return view.batch_create(items)
