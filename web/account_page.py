"""What the account page reads in few queries: the recent records of its timeline in one ``UNION``
and the usage chart with its top events in one ``GROUP BY`` (issue 7: ≤ 15 queries a page).

The rows come back as unsaved model instances carrying the fields the page shows, so the timeline
and the template read them as before (``get_priority_display`` and friends work on them).
"""

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import CharField, F, QuerySet, Sum, Value
from django.db.models.functions import Cast

from accounts.models import Account, EventDaily, SurveyResponse, Ticket, Touchpoint
from journeys.models import Stage, StageChange

# The columns every part of the union has, in this order (names differ from every model field).
_COLUMNS = ("u_kind", "u_at", "u_id", "u_ref", "u_a", "u_b", "u_c", "u_d", "u_e", "u_f")
_BLANK = Value("", output_field=CharField())


@dataclass
class RecentRecords:
    """The newest tickets, survey answers, touchpoints and stage changes of one account."""

    tickets: list[Ticket]
    surveys: list[SurveyResponse]
    touchpoints: list[Touchpoint]
    stage_changes: list[StageChange]


def _part(queryset: QuerySet, kind: str, at: str, *texts) -> QuerySet:
    """One part of the union: ``kind``, time, id and six text columns, in ``_COLUMNS`` order."""
    values = [Value(kind, output_field=CharField()), F(at), F("id")]
    values += [text if text is not None else _BLANK for text in texts]
    values += [_BLANK] * (len(_COLUMNS) - len(values))
    return queryset.annotate(**dict(zip(_COLUMNS, values, strict=True))).values(*_COLUMNS)


def _text(expression) -> Cast:
    return Cast(expression, output_field=CharField())


def _union_parts(account: Account, limit: int) -> list[QuerySet]:
    tickets = Ticket.objects.filter(account=account).order_by("-opened_at", "-id")[:limit]
    surveys = SurveyResponse.objects.filter(account=account).order_by("-responded_at", "-id")[:limit]
    touchpoints = Touchpoint.objects.filter(account=account).order_by("-occurred_at", "-id")[:limit]
    changes = StageChange.objects.filter(account=account).order_by("-changed_at", "-id")[:limit]
    return [
        _part(tickets, "ticket", "opened_at", F("external_id"), F("subject"), F("priority"), F("status")),
        _part(surveys, "survey", "responded_at", F("external_id"), F("comment"), F("kind"), _text("score")),
        _part(
            touchpoints,
            "touchpoint",
            "occurred_at",
            None,
            F("summary"),
            F("kind"),
            F("author__username"),
            F("author__first_name"),
            F("author__last_name"),
        ),
        _part(
            changes,
            "stage",
            "changed_at",
            None,
            F("reason"),
            F("cause"),
            F("from_stage__name"),
            F("to_stage__name"),
        ),
    ]


def _instance(row: dict):
    """An unsaved model instance with the fields the page shows, from one union row."""
    kind, at, pk, ref, a, b, c, d, e = (row[name] for name in _COLUMNS[:-1])
    if kind == "ticket":
        return Ticket(id=pk, external_id=ref, subject=a, priority=b, status=c, opened_at=at)
    if kind == "survey":
        return SurveyResponse(id=pk, external_id=ref, comment=a, kind=b, score=int(c), responded_at=at)
    if kind == "touchpoint":
        touchpoint = Touchpoint(id=pk, summary=a, kind=b, occurred_at=at)
        if c is not None:
            touchpoint.author = get_user_model()(username=c, first_name=d or "", last_name=e or "")
        return touchpoint
    change = StageChange(id=pk, reason=a, cause=b, changed_at=at)
    change.from_stage = Stage(name=c) if c is not None else None
    change.to_stage = Stage(name=d)
    return change


def recent_records(account: Account, *, limit: int, union: bool | None = None) -> RecentRecords:
    """The ``limit`` newest of each record kind: one ``UNION ALL`` on PostgreSQL, four queries
    elsewhere (SQLite refuses ``ORDER BY``/``LIMIT`` inside a compound statement). ``union``
    forces either path (tests compare them)."""
    parts = _union_parts(account, limit)
    if union if union is not None else connection.vendor == "postgresql":
        rows = list(parts[0].union(*parts[1:], all=True))
    else:
        rows = [row for part in parts for row in part]
    by_kind: dict[str, list] = {"ticket": [], "survey": [], "touchpoint": [], "stage": []}
    for row in sorted(rows, key=lambda r: (r["u_at"], r["u_id"]), reverse=True):
        by_kind[row["u_kind"]].append(_instance(row))
    return RecentRecords(by_kind["ticket"], by_kind["survey"], by_kind["touchpoint"], by_kind["stage"])


@dataclass
class Usage:
    """Events per day over the chart's days, and the most frequent names of the last ``top_days``."""

    per_day: list[tuple[dt.date, int]]
    top_events: list[dict]


def usage(account: Account, *, start: dt.date, today: dt.date, top_days: int, top: int) -> Usage:
    """Both usage figures from one ``GROUP BY day, name`` over the rollup (bounded by the days)."""
    rows = (
        EventDaily.objects.filter(account=account, day__gte=start)
        .values("day", "name")
        .annotate(n=Sum("count"))
        .order_by()
        .values_list("day", "name", "n")
    )
    per_day: dict[dt.date, int] = {}
    per_name: dict[str, int] = {}
    top_from = today - dt.timedelta(days=top_days - 1)
    for day, name, n in rows:
        if day <= today:
            per_day[day] = per_day.get(day, 0) + n
        if day >= top_from:
            per_name[name] = per_name.get(name, 0) + n
    ranked = sorted(per_name.items(), key=lambda item: (-item[1], item[0]))[:top]
    return Usage(sorted(per_day.items()), [{"name": name, "n": n} for name, n in ranked])
