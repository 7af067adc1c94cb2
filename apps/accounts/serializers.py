from rest_framework import serializers

from apps.core.serializers import Computed, ResourceSerializer

from .models import APIKey, AuditLog


class AuditLogSerializer(ResourceSerializer):
    object_name = "audit_log"

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "action",
            "object_type",
            "object_id",
            "actor_type",
            "actor_id",
            "credential",
            "role",
            "ip_address",
            "user_agent",
            "device_id",
            "request_id",
            "before",
            "after",
            "created_at",
        ]
        read_only_fields = fields


# Scopes a restricted key may carry: one per resource and verb, with room to spare.
MAX_SCOPES = 100


class APIKeySerializer(ResourceSerializer):
    object_name = "api_key"
    redacted = serializers.CharField(read_only=True)
    livemode = serializers.BooleanField(read_only=True)
    expires_in_days = serializers.IntegerField(write_only=True, required=False, min_value=1)
    scopes = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=MAX_SCOPES)
    computed_fields = {
        "redacted": Computed(
            lambda data, columns: APIKey.redact(columns["prefix"], columns["last4"]), columns=("prefix", "last4")
        ),
        "livemode": lambda data, columns: APIKey.is_live(data["mode"]),
    }

    class Meta:
        model = APIKey
        fields = [
            "id",
            "name",
            "kind",
            "mode",
            "livemode",
            "redacted",
            "scopes",
            "expires_at",
            "expires_in_days",
            "revoked_at",
            "last_used_at",
            "created_at",
        ]
        read_only_fields = ["id", "redacted", "livemode", "expires_at", "revoked_at", "last_used_at", "created_at"]
        # Omitted, a key is of the mode of the credential that creates it.
        extra_kwargs = {"mode": {"required": False}}


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField()
    expires_in = serializers.IntegerField(required=False, min_value=1)
    organization = serializers.CharField(required=False)


class TokenResponseSerializer(serializers.Serializer):
    object = serializers.CharField(default="token")
    id = serializers.CharField()
    token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`; shown once.")
    token_type = serializers.CharField(default="Bearer")
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField()
    organization = serializers.CharField()
