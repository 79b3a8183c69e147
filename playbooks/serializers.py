"""API shapes for tasks, alerts and playbooks. Shape checks only."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from accounts.serializers import AccountRefField
from accounts.visibility import assignable_users
from playbooks.models import Alert, Playbook, Step, Task, Trigger
from playbooks.triggers import trigger_param_errors


class TaskSerializer(serializers.ModelSerializer):
    account = AccountRefField()
    account_name = serializers.CharField(source="account.name", read_only=True)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "account",
            "account_name",
            "title",
            "description",
            "assignee",
            "due_date",
            "priority",
            "status",
            "overdue",
            "playbook",
            "reason",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = ["playbook", "reason", "created_at", "updated_at", "completed_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["assignee"].queryset = assignable_users(request.user)

    def get_overdue(self, task: Task) -> bool:
        today = self.context.get("today")
        return bool(task.status == Task.Status.OPEN and today and task.due_date < today)


class TaskUpdateSerializer(TaskSerializer):
    """PATCH /tasks/{id}/: status, assignee, due date (and wording) only."""

    class Meta(TaskSerializer.Meta):
        read_only_fields = [*TaskSerializer.Meta.read_only_fields, "account"]


class AlertSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "account",
            "account_name",
            "recipient",
            "email",
            "kind",
            "title",
            "body",
            "severity",
            "playbook",
            "reason",
            "read_at",
            "useful",
            "created_at",
        ]
        read_only_fields = fields


class AlertFeedbackSerializer(serializers.Serializer):
    useful = serializers.BooleanField()


class StepSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(required=False)
    assignee_user = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )
    recipient_users = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), many=True, required=False
    )

    class Meta:
        model = Step
        fields = [
            "id",
            "order",
            "kind",
            "title_template",
            "description_template",
            "due_in_days",
            "priority",
            "assignee_rule",
            "assignee_user",
            "severity",
            "recipient_rule",
            "recipient_users",
            "recipient_addresses",
        ]

    def validate_recipient_addresses(self, value: str) -> str:
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        field = serializers.EmailField()
        for address in addresses:
            try:
                field.run_validation(address)
            except serializers.ValidationError:
                raise serializers.ValidationError(f"{address!r} is not a valid email address.") from None
        return ", ".join(addresses)

    def validate(self, attrs):
        if attrs.get("assignee_rule") == Step.AssigneeRule.USER and not attrs.get("assignee_user"):
            raise serializers.ValidationError({"assignee_user": "Required when assignee_rule is 'user'."})
        if attrs.get("recipient_rule") == Step.RecipientRule.ADDRESSES and not attrs.get(
            "recipient_addresses"
        ):
            raise serializers.ValidationError(
                {"recipient_addresses": "Required when recipient_rule is 'addresses'."}
            )
        if attrs.get("recipient_rule") == Step.RecipientRule.USERS and not attrs.get("recipient_users"):
            raise serializers.ValidationError({"recipient_users": "Required when recipient_rule is 'users'."})
        return attrs


class PlaybookStatsSerializer(serializers.Serializer):
    fired = serializers.IntegerField()
    tasks = serializers.IntegerField()
    tasks_done = serializers.IntegerField()
    alerts = serializers.IntegerField()
    alerts_useful = serializers.IntegerField()
    alerts_not_useful = serializers.IntegerField()


class PlaybookSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    trigger_params = serializers.JSONField(required=False)
    segments = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    stages = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    bands = serializers.ListField(
        child=serializers.ChoiceField(choices=["red", "yellow", "green"]), required=False
    )
    min_arr = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, allow_null=True, required=False
    )
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Playbook
        fields = [
            "id",
            "name",
            "description",
            "active",
            "trigger",
            "trigger_params",
            "segments",
            "min_arr",
            "stages",
            "bands",
            "cooldown_days",
            "close_tasks_when_cleared",
            "active_since",
            "steps",
            "stats",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["active_since", "created_at", "updated_at"]

    def get_stats(self, playbook: Playbook) -> dict | None:
        return self.context.get("stats", {}).get(playbook.pk)

    def validate(self, attrs):
        trigger = attrs.get("trigger", getattr(self.instance, "trigger", None))
        params = attrs.get("trigger_params", getattr(self.instance, "trigger_params", {}))
        errors = trigger_param_errors(trigger, params if params is not None else {})
        if errors:
            raise serializers.ValidationError({"trigger_params": errors})
        return attrs


class DryRunItemSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    name = serializers.CharField()
    occurrence = serializers.CharField()
    values = serializers.DictField()
    would_create = serializers.ListField(child=serializers.DictField())
