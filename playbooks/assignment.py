"""Who gets a playbook's task: the assignee rules, resolved for many accounts at once."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Q, Subquery

from accounts.lookups import any_of
from accounts.models import Account, Team
from playbooks.models import Step, Task


@dataclass(frozen=True)
class AccountRef:
    """What assignment needs to know of an account."""

    id: int
    owner_id: int | None
    team_id: int | None
    manager_id: int | None


def account_refs(account_ids: Sequence[int]) -> list[AccountRef]:
    rows = Account.objects.filter(any_of("pk", account_ids)).values_list(
        "id", "owner_id", "team_id", "team__manager_id"
    )
    return [AccountRef(*row) for row in rows.order_by("id")]


def _team_members(team_ids: set[int]) -> dict[int, list[int]]:
    """Active members of each team, in id order (the round-robin order)."""
    members: dict[int, list[int]] = defaultdict(list)
    through = Team.members.through.objects.filter(team_id__in=team_ids, user__is_active=True)
    for team_id, user_id in through.values_list("team_id", "user_id").order_by("team_id", "user_id"):
        members[team_id].append(user_id)
    return members


def _round_robin(step: Step, accounts: Sequence[AccountRef]) -> dict[int, int | None]:
    """Each team's members in turn, continuing after whoever this step assigned last."""
    team_ids = {a.team_id for a in accounts if a.team_id}
    members = _team_members(team_ids)
    last_assigned = dict(
        Team.objects.filter(pk__in=team_ids)
        .annotate(
            last=Subquery(
                Task.objects.filter(step=step, account__team=OuterRef("pk"), assignee__isnull=False)
                .order_by("-id")
                .values("assignee_id")[:1]
            )
        )
        .values_list("id", "last")
    )
    position: dict[int, int] = {}
    for team_id, users in members.items():
        last = last_assigned.get(team_id)
        position[team_id] = users.index(last) + 1 if last in users else 0
    chosen: dict[int, int | None] = {}
    for account in accounts:
        users = members.get(account.team_id or 0)
        if not users:
            chosen[account.id] = account.owner_id
            continue
        chosen[account.id] = users[position[account.team_id] % len(users)]
        position[account.team_id] += 1
    return chosen


def _least_loaded(accounts: Sequence[AccountRef]) -> dict[int, int | None]:
    """The team member with the fewest open tasks, then the fewest accounts; counts grow as we assign."""
    team_ids = {a.team_id for a in accounts if a.team_id}
    members = _team_members(team_ids)
    user_ids = {u for users in members.values() for u in users}
    load = {
        row["id"]: [row["open_tasks"], row["accounts"]]
        for row in get_user_model()
        .objects.filter(pk__in=user_ids)
        .annotate(
            open_tasks=Count("tasks", filter=Q(tasks__status=Task.Status.OPEN), distinct=True),
            accounts=Count("owned_accounts", distinct=True),
        )
        .values("id", "open_tasks", "accounts")
    }
    chosen: dict[int, int | None] = {}
    for account in accounts:
        users = members.get(account.team_id or 0)
        if not users:
            chosen[account.id] = account.owner_id
            continue
        user = min(users, key=lambda u: (*load[u], u))
        load[user][0] += 1
        chosen[account.id] = user
    return chosen


def resolve_assignees(*, step: Step, accounts: Sequence[AccountRef]) -> dict[int, int | None]:
    """The assignee (user id or None) of ``step``'s task for each account, in a few queries.

    Falls back to the account owner when the rule names nobody (no team, no manager).
    """
    rule = step.assignee_rule
    if rule == Step.AssigneeRule.TEAM_MANAGER:
        return {a.id: a.manager_id or a.owner_id for a in accounts}
    if rule == Step.AssigneeRule.USER:
        return {a.id: step.assignee_user_id or a.owner_id for a in accounts}
    if rule == Step.AssigneeRule.ROUND_ROBIN:
        return _round_robin(step, accounts)
    if rule == Step.AssigneeRule.LEAST_LOADED:
        return _least_loaded(accounts)
    return {a.id: a.owner_id for a in accounts}


def resolve_recipients(
    *, step: Step, accounts: Sequence[AccountRef]
) -> dict[int, list[tuple[int | None, str]]]:
    """Recipients of ``step``'s alert per account: ``(user id, "")`` or ``(None, address)``."""
    rule = step.recipient_rule
    result: dict[int, list[tuple[int | None, str]]] = {}
    if rule == Step.RecipientRule.TEAM:
        members = _team_members({a.team_id for a in accounts if a.team_id})
        for a in accounts:
            users = set(members.get(a.team_id or 0, []))
            users |= {u for u in (a.manager_id, a.owner_id) if u}
            result[a.id] = [(u, "") for u in sorted(users)]
        return result
    if rule == Step.RecipientRule.USERS:
        users = sorted(step.recipient_users.values_list("id", flat=True))
        return {a.id: [(u, "") for u in users] for a in accounts}
    if rule == Step.RecipientRule.ADDRESSES:
        addresses = sorted({x.strip().lower() for x in step.recipient_addresses.split(",") if x.strip()})
        return {a.id: [(None, x) for x in addresses] for a in accounts}
    if rule == Step.RecipientRule.TEAM_MANAGER:
        return {a.id: [(u, "") for u in {a.manager_id or a.owner_id} if u] for a in accounts}
    return {a.id: [(a.owner_id, "")] if a.owner_id else [] for a in accounts}
