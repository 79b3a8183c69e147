"""Digests: a daily one to each CSM with work, a weekly renewals one to each manager.

Each is written to the outbox under a key naming the person and the day (or ISO week), so a
second run, or two at once, queue nothing more; ``playbooks.delivery`` sends them. The queries
are set-based: a fixed handful per run, whatever the number of people.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from accounts.models import Account
from health.models import HealthScore
from playbooks.emails import account_url, queue_emails, render_email
from playbooks.models import Alert, EmailDelivery, Task

# Long lists are cut in the email; the account page and "My work" have the rest.
# Each run of the digest jobs is recorded under these names (accounts.steps.recorded).
DAILY_DIGESTS_STEP = "playbooks.digests.daily"
WEEKLY_DIGESTS_STEP = "playbooks.digests.weekly"
ITEMS_PER_SECTION = 25
RENEWAL_WINDOW_DAYS = 90
BAND_ORDER = ["red", "yellow", "green", None]

T = TypeVar("T")


@dataclass(frozen=True)
class Section:
    items: Sequence[Any]
    more: int

    @property
    def count(self) -> int:
        return len(self.items) + self.more


def _section(items: Sequence[T], limit: int = ITEMS_PER_SECTION) -> Section:
    return Section(items=list(items[:limit]), more=max(0, len(items) - limit))


def _with_url(account: Account) -> Account:
    account.url = account_url(account.pk)
    return account


def _digest_recipients(user_ids: set[int]) -> list:
    """Active users with an address, in id order."""
    return list(
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .only("pk", "username", "first_name", "last_name", "email")
    )


def _band_changes(*, since: dt.datetime, now: dt.datetime) -> list[Account]:
    """Active owned accounts scored in (since, now] whose band differs from their band at ``since``."""
    scores = HealthScore.objects.filter(account=OuterRef("pk")).exclude(band="")

    def band_at(moment: dt.datetime) -> Subquery:
        return Subquery(scores.filter(computed_at__lte=moment).order_by("-computed_at").values("band")[:1])

    accounts = (
        Account.objects.filter(owner__isnull=False, status=Account.Status.ACTIVE)
        .filter(Exists(scores.filter(computed_at__gt=since, computed_at__lte=now)))
        .annotate(band_before=band_at(since), band_now=band_at(now))
        # An account scored for the first time has no band to change from.
        .filter(band_before__isnull=False)
        .exclude(band_before=F("band_now"))
        .order_by("name", "id")
    )
    return [_with_url(account) for account in accounts]


def queue_daily_csm_digests(*, now: dt.datetime) -> int:
    """Queue today's digest for each user with open tasks, new alerts or a band change. Safe to run twice.

    It lists their overdue and open tasks, the alerts they got in the last 24 hours, and the
    accounts of their book whose health band changed in that time (from the score history).
    """
    today = timezone.localdate(now)
    since = now - dt.timedelta(days=1)
    tasks_by_user: dict[int, list[Task]] = defaultdict(list)
    open_tasks = (
        Task.objects.filter(status=Task.Status.OPEN, assignee__isnull=False)
        .select_related("account")
        .order_by("due_date", "id")
    )
    for task in open_tasks:
        _with_url(task.account)
        tasks_by_user[task.assignee_id].append(task)
    alerts_by_user: dict[int, list[Alert]] = defaultdict(list)
    new_alerts = (
        Alert.objects.filter(recipient__isnull=False, created_at__gt=since, created_at__lte=now)
        .select_related("account")
        .order_by("-created_at", "-id")
    )
    for alert in new_alerts:
        _with_url(alert.account)
        alerts_by_user[alert.recipient_id].append(alert)
    changes_by_owner: dict[int, list[Account]] = defaultdict(list)
    for account in _band_changes(since=since, now=now):
        changes_by_owner[account.owner_id].append(account)

    deliveries = []
    for user in _digest_recipients(set(tasks_by_user) | set(alerts_by_user) | set(changes_by_owner)):
        tasks = tasks_by_user.get(user.pk, [])
        email = render_email(
            "digest_csm",
            {
                "user": user,
                "today": today,
                "overdue": _section([t for t in tasks if t.due_date < today]),
                "open": _section([t for t in tasks if t.due_date >= today]),
                "alerts": _section(alerts_by_user.get(user.pk, [])),
                "band_changes": _section(changes_by_owner.get(user.pk, [])),
            },
        )
        deliveries.append(
            EmailDelivery(
                key=f"digest:csm:{user.pk}:{today.isoformat()}",
                to_email=user.email,
                subject=email.subject,
                text_body=email.text,
                html_body=email.html,
                next_attempt_at=now,
            )
        )
    return queue_emails(deliveries=deliveries)


@dataclass(frozen=True)
class BandTotal:
    band: str | None
    currency: str
    accounts: int
    arr: Decimal


def _arr_by_band(accounts: Sequence[Account]) -> list[BandTotal]:
    totals: dict[tuple[str | None, str], list] = {}
    for account in accounts:
        entry = totals.setdefault((account.health_band, account.currency), [0, Decimal(0)])
        entry[0] += 1
        entry[1] += account.arr
    return [
        BandTotal(band, currency, count, arr)
        for (band, currency), (count, arr) in sorted(
            totals.items(), key=lambda item: (BAND_ORDER.index(item[0][0]), item[0][1])
        )
    ]


def queue_weekly_renewal_digests(*, now: dt.datetime) -> int:
    """Queue this ISO week's renewals digest for each manager with renewals ahead. Safe to run twice.

    It lists the active accounts of the teams they manage renewing in the next 90 days, and
    their ARR by health band.
    """
    today = timezone.localdate(now)
    iso = today.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    renewals = (
        Account.objects.filter(
            team__manager__isnull=False,
            status=Account.Status.ACTIVE,
            renewal_date__gte=today,
            renewal_date__lte=today + dt.timedelta(days=RENEWAL_WINDOW_DAYS),
        )
        .select_related("team", "owner")
        .order_by("renewal_date", "name", "id")
    )
    by_manager: dict[int, list[Account]] = defaultdict(list)
    for account in renewals:
        account.days_left = (account.renewal_date - today).days
        by_manager[account.team.manager_id].append(_with_url(account))

    deliveries = []
    for user in _digest_recipients(set(by_manager)):
        accounts = by_manager[user.pk]
        email = render_email(
            "digest_renewals",
            {
                "user": user,
                "today": today,
                "week": week,
                "window_days": RENEWAL_WINDOW_DAYS,
                "renewals": _section(accounts, limit=100),
                "arr_by_band": _arr_by_band(accounts),
                "teams": sorted({a.team.name for a in accounts}),
            },
        )
        deliveries.append(
            EmailDelivery(
                key=f"digest:renewals:{user.pk}:{week}",
                to_email=user.email,
                subject=email.subject,
                text_body=email.text,
                html_body=email.html,
                next_attempt_at=now,
            )
        )
    return queue_emails(deliveries=deliveries)
