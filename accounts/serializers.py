"""API shapes for accounts and what is known about them. Shape checks only; no side effects."""

import functools
import re

from django.contrib.auth import get_user_model
from rest_framework import serializers

from accounts.models import Account, Contact, Event, SurveyResponse, Team, Ticket, Touchpoint
from accounts.visibility import assignable_users, visible_accounts, visible_teams


class AccountSerializer(serializers.ModelSerializer):
    """An account; owner and team must be within the caller's reach (else "does not exist")."""

    arr = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), allow_null=True, required=False)
    health_score = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Account
        fields = [
            "id",
            "external_id",
            "name",
            "domain",
            "segment",
            "tier",
            "arr",
            "currency",
            "owner",
            "team",
            "contract_start",
            "renewal_date",
            "status",
            "churned_at",
            "churn_reason",
            "stage",
            "health_score",
            "health_band",
            "health_band_since",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "stage",
            "health_score",
            "health_band",
            "health_band_since",
            "created_at",
            "updated_at",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["owner"].queryset = assignable_users(request.user)
            self.fields["team"].queryset = visible_teams(request.user)

    def validate_currency(self, value: str) -> str:
        value = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise serializers.ValidationError("Must be a three-letter ISO 4217 code, e.g. USD.")
        return value

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs):
        contract_start = attrs.get("contract_start", getattr(self.instance, "contract_start", None))
        renewal_date = attrs.get("renewal_date", getattr(self.instance, "renewal_date", None))
        if contract_start and renewal_date and renewal_date < contract_start:
            raise serializers.ValidationError({"renewal_date": "Must not be before contract_start."})
        return attrs


class AccountRows:
    """Formats ``.values()`` rows of accounts exactly as ``AccountSerializer`` shows an account.

    The list reads plain rows instead of model instances, and each value goes through the
    serializer's own field (``to_representation``), so the JSON is the same byte for byte; what is
    saved is building an ``Account`` and walking the field sources for every row. A relation is
    read as its id column (``owner`` → ``owner_id``), which is what its field would show.
    """

    def __init__(self) -> None:
        self.columns: list[tuple[str, object]] = []
        for name, field in AccountSerializer().fields.items():
            if field.write_only:
                continue
            convert = None if isinstance(field, serializers.RelatedField) else field.to_representation
            self.columns.append((name, convert))

    @property
    def names(self) -> list[str]:
        """The ``.values()`` columns to read (the serializer's field names)."""
        return [name for name, _ in self.columns]

    def __call__(self, row: dict) -> dict:
        shown = {}
        for name, convert in self.columns:
            value = row[name]
            shown[name] = value if value is None or convert is None else convert(value)
        return shown


@functools.cache
def account_rows() -> AccountRows:
    """One formatter per process: the fields hold no per-request state."""
    return AccountRows()


class AccountRefField(serializers.Field):
    """An account by id (integer) or external_id (string), looked up within the caller's scope."""

    default_error_messages = {
        "unknown": "Unknown account {ref!r}.",
        "invalid": "Must be an id or external_id.",
    }

    def to_internal_value(self, data):
        accounts = visible_accounts(self.context["request"].user)
        if isinstance(data, bool) or not isinstance(data, (int, str)) or data == "":
            self.fail("invalid")
        account = (
            accounts.filter(pk=data).first()
            if isinstance(data, int)
            else accounts.filter(external_id=data).first()
        )
        if account is None:
            self.fail("unknown", ref=data)
        return account

    def to_representation(self, value):
        return value.pk


class ContactSerializer(serializers.ModelSerializer):
    account = AccountRefField()

    class Meta:
        model = Contact
        fields = ["id", "account", "name", "email", "title", "is_champion", "external_id", "created_at"]
        read_only_fields = ["created_at"]
        validators = []  # uniqueness per account is checked in validate(), naming the field

    def validate_email(self, value: str) -> str:
        return value.strip().lower()

    def validate(self, attrs):
        account = attrs.get("account", getattr(self.instance, "account", None))
        others = Contact.objects.filter(account=account)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        for field in ("email", "external_id"):
            if attrs.get(field) and others.filter(**{field: attrs[field]}).exists():
                raise serializers.ValidationError(
                    {field: "This account already has a contact with this value."}
                )
        return attrs


# --- ingestion: documentation of the bodies (validation lives in accounts.rows) ------------


class EventInSerializer(serializers.Serializer):
    account = serializers.CharField(help_text="The account's external_id (or its id as an integer).")
    name = serializers.CharField(max_length=100)
    occurred_at = serializers.DateTimeField(help_text="ISO-8601 with a time zone.")
    value = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    contact = serializers.CharField(required=False, allow_null=True, help_text="Email or external_id.")
    properties = serializers.DictField(required=False)
    idempotency_key = serializers.CharField(max_length=255, required=False, allow_null=True)


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class TicketUpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


class EventSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.external_id", read_only=True)
    contact = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "account",
            "contact",
            "name",
            "occurred_at",
            "value",
            "properties",
            "idempotency_key",
            "received_at",
        ]


class TicketSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.external_id")

    class Meta:
        model = Ticket
        fields = [
            "id",
            "account",
            "external_id",
            "subject",
            "priority",
            "status",
            "opened_at",
            "closed_at",
            "updated_at",
        ]
        read_only_fields = ["id", "updated_at"]
        extra_kwargs = {"external_id": {"validators": []}}


class SurveyResponseSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.external_id")
    contact = serializers.CharField(
        source="contact.email", required=False, allow_null=True, help_text="Email or external_id."
    )
    score = serializers.IntegerField(min_value=0, max_value=10, help_text="NPS 0 to 10, CSAT 1 to 5.")

    class Meta:
        model = SurveyResponse
        fields = ["id", "account", "contact", "kind", "score", "comment", "responded_at", "external_id"]
        read_only_fields = ["id"]
        extra_kwargs = {"external_id": {"validators": []}}


class TouchpointSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.external_id")
    author = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Touchpoint
        fields = ["id", "account", "author", "kind", "occurred_at", "summary", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "manager", "members"]
