"""The journeys overview: accounts per stage (a funnel), median days in stage, milestone rates.

Five queries whatever the number of accounts; every figure is over the accounts given (the
caller's scope).
"""

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import Lead

from accounts.models import Account
from journeys.models import AccountJourney, Journey, Milestone, MilestoneDefinition, Stage, StageChange

DAY = 86400.0


@dataclass
class MilestoneRate:
    key: str
    name: str
    counted: int = 0  # instances not skipped
    done: int = 0
    done_late: int = 0
    overdue_now: int = 0

    @property
    def completion_rate(self) -> float | None:
        return self.done / self.counted if self.counted else None

    @property
    def overdue_rate(self) -> float | None:
        """Share that went past due: still overdue, or done after the due date."""
        return (self.overdue_now + self.done_late) / self.counted if self.counted else None


@dataclass
class StageFigures:
    key: str
    name: str
    order: int
    accounts: int = 0
    median_days: float | None = None  # over finished visits of the stage
    median_days_so_far: float | None = None  # over the visits still running
    milestones: list[MilestoneRate] = field(default_factory=list)


@dataclass
class JourneyFigures:
    key: str
    name: str
    stages: list[StageFigures]

    @property
    def accounts(self) -> int:
        return sum(stage.accounts for stage in self.stages)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def journeys_report(*, accounts: QuerySet[Account], now: dt.datetime) -> list[JourneyFigures]:
    """Every journey with accounts in ``accounts`` (or the default one), stage by stage."""
    journeys = {j.pk: j for j in Journey.objects.all()}
    stages: dict[int, StageFigures] = {}
    stages_of: dict[int, list[StageFigures]] = defaultdict(list)
    for stage in Stage.objects.order_by("journey_id", "order"):
        figures = StageFigures(stage.key, stage.name, stage.order)
        stages[stage.pk] = figures
        stages_of[stage.journey_id].append(figures)

    placed = (
        AccountJourney.objects.filter(account__in=accounts)
        .values("stage_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in placed:
        stages[row["stage_id"]].accounts = row["n"]

    visits = (
        StageChange.objects.filter(account__in=accounts)
        .annotate(
            left_at=Window(
                Lead("changed_at"), partition_by=[F("account_id")], order_by=[F("changed_at"), F("id")]
            )
        )
        .values_list("to_stage_id", "changed_at", "left_at")
    )
    finished: dict[int, list[float]] = defaultdict(list)
    running: dict[int, list[float]] = defaultdict(list)
    for stage_id, entered, left in visits:
        if left is None:
            running[stage_id].append((now - entered).total_seconds() / DAY)
        else:
            finished[stage_id].append((left - entered).total_seconds() / DAY)
    for stage_id, figures in stages.items():
        figures.median_days = _median(finished.get(stage_id, []))
        figures.median_days_so_far = _median(running.get(stage_id, []))

    rates = {
        row["definition_id"]: row
        for row in Milestone.objects.filter(account__in=accounts)
        .exclude(status=Milestone.Status.SKIPPED)
        .values("definition_id")
        .annotate(
            counted=Count("id"),
            done=Count("id", filter=Q(status=Milestone.Status.DONE)),
            done_late=Count("id", filter=Q(status=Milestone.Status.DONE, completed_at__gt=F("due_at"))),
            overdue_now=Count("id", filter=Q(status=Milestone.Status.OVERDUE)),
        )
        .order_by()
    }
    for definition in MilestoneDefinition.objects.order_by("stage_id", "order", "id"):
        row = rates.get(definition.pk, {})
        stages[definition.stage_id].milestones.append(
            MilestoneRate(
                definition.key,
                definition.name,
                counted=row.get("counted", 0),
                done=row.get("done", 0),
                done_late=row.get("done_late", 0),
                overdue_now=row.get("overdue_now", 0),
            )
        )

    report = []
    for journey_id, journey in sorted(journeys.items(), key=lambda j: (not j[1].is_default, j[1].name)):
        figures = JourneyFigures(journey.key, journey.name, stages_of.get(journey_id, []))
        if figures.accounts or journey.is_default:
            report.append(figures)
    return report
