"""Voice of the customer: NPS and CSAT over time and by segment, stage and CSM; recent comments.

NPS = % promoters (9-10) - % detractors (0-6) of the answers, from -100 to 100, to one decimal;
passives answered 7-8. CSAT is the average answer (1-5) and the share of satisfied answers (4-5).
Months are UTC calendar months. "By stage" and "by segment" use the account's current stage and
segment (the answer does not record them). A fixed number of queries whatever the number of
answers; every figure is over the accounts given (the caller's scope).
"""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.functions import TruncMonth

from accounts.models import Account, SurveyResponse
from insights.periods import midnight, month_starts

PROMOTER = Q(score__gte=9)
DETRACTOR = Q(score__lte=6)
SATISFIED = Q(score__gte=4)
COMMENTS = 20


@dataclass
class Nps:
    responses: int = 0
    promoters: int = 0
    detractors: int = 0

    @property
    def passives(self) -> int:
        return self.responses - self.promoters - self.detractors

    @property
    def score(self) -> float | None:
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)


@dataclass
class Csat:
    responses: int = 0
    average: float | None = None
    satisfied: int = 0

    @property
    def satisfied_share(self) -> float | None:
        return round(self.satisfied / self.responses, 4) if self.responses else None


@dataclass
class VoiceReport:
    start: dt.date
    end: dt.date  # exclusive
    nps: Nps
    csat: Csat
    nps_by_month: list[tuple[dt.date, Nps]]
    csat_by_month: list[tuple[dt.date, Csat]]
    nps_by_segment: dict[str, Nps]
    nps_by_stage: dict[str, Nps]
    nps_by_csm: list[tuple[int | None, str, Nps]]
    comments: list[SurveyResponse] = field(default_factory=list)


def _nps_counts() -> dict:
    return {
        "n": Count("pk"),
        "promoters": Count("pk", filter=PROMOTER),
        "detractors": Count("pk", filter=DETRACTOR),
    }


def _nps(row: dict) -> Nps:
    return Nps(row["n"], row["promoters"], row["detractors"])


def _name(first: str, last: str, username: str | None) -> str:
    if username is None:
        return "Unassigned"
    return f"{first} {last}".strip() or username


def voice_report(*, accounts: QuerySet[Account], today: dt.date, months: int = 12) -> VoiceReport:
    """NPS and CSAT of the last ``months`` calendar months (this one included). Six queries."""
    starts = month_starts(today=today, months=months)
    start = starts[0]
    end = (dt.date(today.year, today.month, 28) + dt.timedelta(days=4)).replace(day=1)
    answers = SurveyResponse.objects.filter(
        account__in=accounts.order_by().values("pk"),
        responded_at__gte=midnight(start),
        responded_at__lt=midnight(end),
    ).order_by()
    nps_answers = answers.filter(kind=SurveyResponse.Kind.NPS)

    nps_months = {m: Nps() for m in starts}
    csat_months = {m: Csat() for m in starts}
    monthly = (
        answers.annotate(month=TruncMonth("responded_at", tzinfo=dt.UTC))
        .values("month", "kind")
        .annotate(**_nps_counts(), average=Avg("score"), satisfied=Count("pk", filter=SATISFIED))
    )
    for row in monthly:
        month = row["month"].date()
        if row["kind"] == SurveyResponse.Kind.NPS:
            nps_months[month] = _nps(row)
        else:
            csat_months[month] = Csat(row["n"], round(float(row["average"]), 2), row["satisfied"])
    nps = Nps(
        sum(n.responses for n in nps_months.values()),
        sum(n.promoters for n in nps_months.values()),
        sum(n.detractors for n in nps_months.values()),
    )
    csat_rows = [c for c in csat_months.values() if c.responses]
    csat_total = sum(c.responses for c in csat_rows)
    csat = Csat(
        csat_total,
        round(sum(c.average * c.responses for c in csat_rows) / csat_total, 2) if csat_total else None,
        sum(c.satisfied for c in csat_rows),
    )
    by_segment = {
        row["account__segment"]: _nps(row)
        for row in nps_answers.values("account__segment")
        .annotate(**_nps_counts())
        .order_by("account__segment")
    }
    by_stage = {
        row["account__stage"]: _nps(row)
        for row in nps_answers.values("account__stage").annotate(**_nps_counts()).order_by("account__stage")
    }
    by_csm = [
        (
            row["account__owner_id"],
            _name(
                row["account__owner__first_name"],
                row["account__owner__last_name"],
                row["account__owner__username"],
            ),
            _nps(row),
        )
        for row in nps_answers.values(
            "account__owner_id",
            "account__owner__username",
            "account__owner__first_name",
            "account__owner__last_name",
        )
        .annotate(**_nps_counts())
        .order_by("account__owner__username")
    ]
    comments = list(
        answers.exclude(comment="")
        .select_related("account", "contact")
        .order_by("-responded_at", "-id")[:COMMENTS]
    )
    return VoiceReport(
        start=start,
        end=end,
        nps=nps,
        csat=csat,
        nps_by_month=list(nps_months.items()),
        csat_by_month=list(csat_months.items()),
        nps_by_segment=by_segment,
        nps_by_stage=by_stage,
        nps_by_csm=by_csm,
        comments=comments,
    )


def recent_comments(*, account: Account, limit: int = 5) -> list[SurveyResponse]:
    """The account's latest survey answers that carry a comment (the account page). One query."""
    return list(
        SurveyResponse.objects.filter(account=account)
        .exclude(comment="")
        .select_related("contact")
        .order_by("-responded_at", "-id")[:limit]
    )
