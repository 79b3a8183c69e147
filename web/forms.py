"""Forms of the pages: they check shape only; the views hand clean values to domain functions."""

import datetime as dt

from django import forms
from django.utils import timezone

from accounts.models import Account, Touchpoint
from insights.models import RfmSegment
from playbooks.models import Priority

BAND_CHOICES = [("red", "Red"), ("yellow", "Yellow"), ("green", "Green"), ("unscored", "Unscored")]
RENEWAL_CHOICES = [
    ("", "Any time"),
    ("30", "≤ 30 days"),
    ("60", "≤ 60 days"),
    ("90", "≤ 90 days"),
    ("180", "≤ 180 days"),
]


class BookFilterForm(forms.Form):
    """My book's filters, read from the query string (a bookmarkable URL)."""

    q = forms.CharField(required=False, max_length=100)
    band = forms.MultipleChoiceField(required=False, choices=BAND_CHOICES)
    stage = forms.CharField(required=False, max_length=64)
    segment = forms.CharField(required=False, max_length=64)
    rfm_segment = forms.ChoiceField(required=False, choices=[("", "Any"), *RfmSegment.choices])
    renewal = forms.TypedChoiceField(required=False, choices=RENEWAL_CHOICES, coerce=int, empty_value=None)
    owner = forms.CharField(required=False, max_length=20)
    sort = forms.CharField(required=False, max_length=20)
    status = forms.ChoiceField(
        required=False, choices=[("active", "Active"), ("churned", "Churned"), ("all", "All")]
    )

    def clean_owner(self) -> str:
        owner = self.cleaned_data["owner"]
        if owner and owner not in ("me", "none") and not owner.isdigit():
            raise forms.ValidationError("Pick an owner from the list.")
        return owner


class TouchpointForm(forms.Form):
    kind = forms.ChoiceField(choices=Touchpoint.Kind.choices)
    occurred_at = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="When it happened (your time zone).",
    )
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, required=False)

    def clean_occurred_at(self) -> dt.datetime:
        when = self.cleaned_data["occurred_at"]
        if when > timezone.now() + dt.timedelta(minutes=5):
            raise forms.ValidationError("A touchpoint cannot be in the future.")
        return when


class TaskForm(forms.Form):
    title = forms.CharField(max_length=300)
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)
    assignee = forms.ModelChoiceField(queryset=None, required=False, empty_label="Me")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)

    def __init__(self, *args, assignees=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignees
        self.fields["assignee"].label_from_instance = lambda u: u.get_full_name() or u.username

    def clean_due_date(self) -> dt.date:
        due = self.cleaned_data["due_date"]
        if due < timezone.localdate() - dt.timedelta(days=365):
            raise forms.ValidationError("That date is more than a year ago.")
        return due


class OverrideForm(forms.Form):
    band = forms.ChoiceField(choices=Account.Band.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    expires_on = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), label="Until", help_text="At most a year ahead."
    )


class SnoozeForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=90, required=False)
    until = forms.DateField(required=False)

    def due_date(self, *, today: dt.date) -> dt.date | None:
        if self.cleaned_data.get("until"):
            return self.cleaned_data["until"]
        if self.cleaned_data.get("days"):
            return today + dt.timedelta(days=self.cleaned_data["days"])
        return None


class BacktestForm(forms.Form):
    """The parameters of a backtest, as a bookmarkable GET form; the domain validates them."""

    scorecard = forms.ModelChoiceField(queryset=None, empty_label=None)
    compare = forms.ModelChoiceField(queryset=None, required=False, empty_label="(none)")
    as_of = forms.DateField(label="As of", widget=forms.DateInput(attrs={"type": "date"}))
    outcome = forms.ChoiceField(
        choices=[("churned", "Churned"), ("renewed", "Renewed"), ("event", "Did an event")]
    )
    event = forms.CharField(required=False, max_length=100, help_text="For 'Did an event'.")
    horizon_days = forms.IntegerField(min_value=1, max_value=3650, initial=180, label="Horizon (days)")

    def __init__(self, *args, scorecards, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scorecard"].queryset = scorecards
        self.fields["compare"].queryset = scorecards

    def backtest_input(self) -> dict:
        """The domain's input shape (the same as the API's)."""
        data = self.cleaned_data
        outcome = (
            {"event": data["event"], "within_days": data["horizon_days"]}
            if data["outcome"] == "event"
            else data["outcome"]
        )
        return {"as_of": data["as_of"], "outcome": outcome, "horizon_days": data["horizon_days"]}
