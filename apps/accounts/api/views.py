from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core import policy
from apps.core.errors import UnknownParameter
from apps.core.filters import CHOICE_OPS, DATE_OPS, ResourceFilterSet
from apps.core.views import ReadOnlyResourceViewSet, StatesetAPIView

from .. import services
from ..models import APIKey, AuditLog
from ..serializers import APIKeySerializer, AuditLogSerializer, TokenRequestSerializer, TokenResponseSerializer


@extend_schema_view(
    post=extend_schema(request=TokenRequestSerializer, responses={201: TokenResponseSerializer}, auth=[]),
)
class AuthTokenView(StatesetAPIView):
    """`POST /v1/auth/token {email, password, expires_in?, organization?}`: a short-lived,
    revocable token for a staff user. `DELETE /v1/auth/token` revokes the token in use."""

    allow_anonymous = True
    authentication_classes = []

    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        unknown = set(data) - {"email", "password", "expires_in", "expiresIn", "organization"}
        if unknown:
            name = sorted(unknown)[0]
            raise UnknownParameter(f"Received unknown parameter: {name}", param=name)
        if "expiresIn" in data:
            data = {**data, "expires_in": data["expiresIn"]}
            data.pop("expiresIn")
        serializer = TokenRequestSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        token, secret = services.auth_token_create(
            email=values["email"],
            password=values["password"],
            organization_reference=values.get("organization"),
            expires_in=values.get("expires_in"),
        )
        return Response(
            {
                "object": "token",
                "id": token.id,
                "token": secret,
                "token_type": "Bearer",
                "expires_at": token.expires_at,
                "expires_in": round((token.expires_at - token.created_at).total_seconds()),
                "organization": token.organization_id,
            },
            status=status.HTTP_201_CREATED,
        )


class AuditLogFilterSet(ResourceFilterSet):
    class Meta:
        model = AuditLog
        fields = {
            "action": CHOICE_OPS,
            "object_type": CHOICE_OPS,
            "object_id": CHOICE_OPS,
            "actor_id": CHOICE_OPS,
            "created_at": DATE_OPS,
        }


class AuditLogViewSet(ReadOnlyResourceViewSet):
    """The audit log of the organization (admins only)."""

    model = AuditLog
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilterSet
    search_fields = ("action", "object_id", "actor_id")


class APIKeyFilterSet(ResourceFilterSet):
    class Meta:
        model = APIKey
        fields = {"kind": CHOICE_OPS, "mode": CHOICE_OPS, "created_at": DATE_OPS}


class APIKeyViewSet(ReadOnlyResourceViewSet):
    """API keys of the organization (admins): list, create (the secret is shown once), revoke.
    A live credential sees and manages the keys of both modes; a test credential test keys only."""

    model = APIKey
    serializer_class = APIKeySerializer
    filterset_class = APIKeyFilterSet

    def base_queryset(self, operation="read"):
        policy.authorize(self.actor, self.policy_label, operation)
        return services.api_key_list(actor=self.actor)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        user = request.user if getattr(request.user, "pk", None) else None
        key, secret = services.api_key_create(
            organization=self.actor.organization,
            kind=values["kind"],
            mode=values.get("mode"),
            name=values.get("name", ""),
            scopes=values.get("scopes") or [],
            expires_in_days=values.get("expires_in_days"),
            created_by_user=user,
            actor=self.actor,
        )
        body = self.get_serializer(key).data
        body["secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], url_path="revoke")
    def revoke(self, request, *args, **kwargs):
        key = self.get_object("revoke")  # also for DELETE, which revokes
        key = services.api_key_revoke(key=key, actor=self.actor)
        return self.serialize(key)

    def destroy(self, request, *args, **kwargs):
        self.revoke(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)
