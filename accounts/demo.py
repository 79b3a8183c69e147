"""Deterministic, realistic demo data: users, teams, accounts and 180 days of their story.

Everything is drawn from one ``random.Random(seed)`` and placed relative to ``now``, so the same
seed and ``now`` always give the same data. Events, tickets and survey answers go through the
ingestion functions, exactly as an integrator's would, so the daily rollup is maintained.
"""

import datetime as dt
import math
import random
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.ingestion import MAX_EVENTS_PER_BATCH, ingest_events, record_surveys, upsert_tickets
from accounts.models import Account, Contact, EventDaily, SurveyResponse, Team, Ticket, Touchpoint
from accounts.visibility import ROLE_ADMIN, ROLE_CSM, ROLE_MANAGER

DEMO_PASSWORD = "lifeline"
HISTORY_DAYS = 180
EMAIL_DOMAIN = "lifeline.example"
# Customers live under the reserved ``.example`` TLD: no demo address can ever reach a real inbox.
CUSTOMER_TLD = "example"

Progress = Callable[[int, int], None]


class DemoDataExists(Exception):
    """Accounts already exist: seeding would mix demo data into real (or earlier demo) data."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: str
    team: str | None

    @property
    def email(self) -> str:
        return f"{_ascii(self.first_name)}.{_ascii(self.last_name)}@{EMAIL_DOMAIN}"


TEAM_NORTH = "North"
TEAM_SOUTH = "South"
DEMO_USERS = (
    DemoUser("admin", "Morgan", "Reyes", ROLE_ADMIN, None),
    DemoUser("manager1", "Priya", "Raman", ROLE_MANAGER, TEAM_NORTH),
    DemoUser("manager2", "Daniel", "Okafor", ROLE_MANAGER, TEAM_SOUTH),
    DemoUser("csm1", "Emma", "Lindqvist", ROLE_CSM, TEAM_NORTH),
    DemoUser("csm2", "Lucas", "Moreau", ROLE_CSM, TEAM_NORTH),
    DemoUser("csm3", "Hannah", "Kim", ROLE_CSM, TEAM_NORTH),
    DemoUser("csm4", "Mateo", "García", ROLE_CSM, TEAM_SOUTH),
    DemoUser("csm5", "Olivia", "Brooks", ROLE_CSM, TEAM_SOUTH),
    DemoUser("csm6", "Samuel", "Adeyemi", ROLE_CSM, TEAM_SOUTH),
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    team: str


@dataclass(frozen=True)
class DemoSummary:
    now: dt.datetime
    users_created: int
    teams: int
    accounts: int
    churned: int
    contacts: int
    events: int
    event_days: int
    tickets: int
    open_tickets: int
    surveys: int
    touchpoints: int
    segments: dict[str, int] = field(default_factory=dict)
    patterns: dict[str, int] = field(default_factory=dict)
    logins: list[DemoLogin] = field(default_factory=list)


# --- word lists ---------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


COMPANY_WORDS = _words(
    """
    Acorn Alder Alpine Amber Anchor Apex Arbor Arrow Aspen Atlas Aurora Beacon Birch Bluebird
    Boulder Bright Cairn Canyon Cedar Cobalt Copper Coral Crescent Crown Delta Driftwood Ember
    Evergreen Falcon Fjord Foxglove Granite Harbor Hawthorn Helix Horizon Indigo Iron Juniper
    Keystone Kestrel Lantern Linden Lumen Maple Meridian Millstone Monarch Northwind Nova Oakridge
    Orchid Osprey Pacific Paragon Pinnacle Polar Prairie Quarry Redwood Ridgeline River Saffron
    Sequoia Sierra Silverline Slate Solstice Sterling Summit Tidewater Timber Topaz Trident Tundra
    Vantage Verdant Willow Zenith
    """
)
COMPANY_KINDS = _words(
    """
    Analytics Apparel Bank Biotech Brewing Capital Clinics Consulting Dental Dynamics Energy
    Engineering Farms Fintech Fitness Foods Freight Health Hotels Insurance Labs Learning Legal
    Logistics Manufacturing Media Medical Mobility Networks Outfitters Partners Pharma Properties
    Realty Retail Robotics Security Software Solar Studios Supply Systems Telecom Travel Ventures
    Wholesale
    """
)
COMPOUND_HEADS = _words(
    """
    Bright Clear Swift True Open Iron Quantum Terra Vertex Sky Deep Far High Blue Green Red Gold
    Star Sun Wave
    """
)
COMPOUND_TAILS = _words(
    """
    path wave stack field point forge line bridge works loop scale grid leaf sight mark gate craft
    vale beam spring
    """
)
LEGAL_SUFFIXES = ("", "", "", "", "Inc.", "Group", "Co.", "LLC", "Ltd")

FIRST_NAMES = _words(
    """
    Aisha Alejandro Amara Ana Andrew Anna Arjun Ben Camila Carlos Chloe Chen David Diego Elena Emily
    Ethan Fatima Felix Grace Hiro Isabel Ivan Jack James Jana Jasmine Julia Kai Karin Laura Leo Liam
    Lina Maria Marcus Maya Mei Miguel Nadia Noah Nora Omar Paul Rachel Rahul Rosa Ryan Sara Sofia
    Tariq Tom Valentina Victor Wei Yara Yusuf Zoe
    """
)
LAST_NAMES = _words(
    """
    Anderson Bauer Bianchi Brown Carter Chen Costa Dubois Evans Fischer Garcia Gonzalez Gupta Hansen
    Hernandez Ibrahim Ito Jensen Johnson Kowalski Kumar Larsen Lee Lopez Martin Mendes Meyer Miller
    Moreno Murphy Nakamura Nguyen Novak Okoye Olsen Patel Petrov Price Rossi Santos Schmidt Silva
    Singh Smith Sousa Tanaka Taylor Thomas Walker Wang Weber Williams Wilson Yilmaz
    """
)
SENIOR_TITLES = (
    "VP Operations",
    "Head of Customer Experience",
    "Director of IT",
    "COO",
    "CFO",
    "VP Sales",
    "Head of Data",
    "Director of Marketing",
)
TITLES = (
    "Operations Manager",
    "Data Analyst",
    "Product Manager",
    "Marketing Lead",
    "Sales Operations Manager",
    "Engineering Manager",
    "Office Manager",
    "Finance Manager",
    "Business Analyst",
    "Support Lead",
    "IT Administrator",
    "Account Coordinator",
)

SEGMENTS = {
    # segment: (share, ARR range, tiers, contacts range, events per weekday)
    "smb": (0.50, (5_000, 25_000), ("starter", "growth"), (2, 4), 2.0),
    "mid-market": (0.35, (25_000, 120_000), ("growth", "scale"), (3, 5), 4.5),
    "enterprise": (0.15, (120_000, 900_000), ("scale", "premier"), (4, 6), 9.0),
}
PATTERNS = {
    # pattern: share of the accounts
    "healthy": 0.40,
    "growing": 0.15,
    "declining": 0.15,
    "quiet": 0.10,
    "onboarding": 0.14,
    "churned": 0.06,
}
CHURN_REASONS = (
    "Budget cuts",
    "Moved to a competitor",
    "Acquired; tooling consolidated",
    "Low adoption",
    "Champion left the company",
    "Project cancelled",
)

EVENT_MIX = {
    # name: weight, per pattern (onboarding invites more people, declining accounts export more)
    "default": {"login": 50, "report_viewed": 25, "export": 7, "invite_sent": 3, "order_placed": 12},
    "onboarding": {"login": 50, "report_viewed": 15, "export": 3, "invite_sent": 12, "order_placed": 6},
    "growing": {"login": 50, "report_viewed": 25, "export": 6, "invite_sent": 7, "order_placed": 14},
    "declining": {"login": 50, "report_viewed": 18, "export": 14, "invite_sent": 1, "order_placed": 8},
}
ORDER_VALUES = {"smb": (40, 600), "mid-market": (200, 3_000), "enterprise": (1_000, 20_000)}
REPORTS = ("Pipeline overview", "Weekly usage", "Revenue by region", "Team activity", "Forecast")
EXPORT_FORMATS = ("csv", "xlsx", "pdf")
INTEGRATIONS = ("Salesforce", "HubSpot", "Slack", "Snowflake", "Zendesk", "Jira", "Google Drive")

TICKET_SUBJECTS = {
    "setup": (
        "SSO setup with Okta",
        "Importing historical data",
        "Help configuring user roles",
        "CSV import fails on the date column",
        "Connecting our Salesforce instance",
    ),
    "issue": (
        "Dashboard slow to load for some users",
        "Export to Excel times out",
        "Report totals don't match our numbers",
        "Integration sync stuck since yesterday",
        "Webhook deliveries failing",
        "Email notifications not arriving",
    ),
    "question": (
        "How do I schedule a report?",
        "Billing question about extra seats",
        "Adding a second workspace",
        "API rate limits",
        "Where is the audit log?",
    ),
    "escalation": (
        "Production data not syncing",
        "Users locked out after SSO change",
        "Data missing since the last release",
        "Reports wrong for the board meeting",
    ),
}
NPS_COMMENTS = {
    "promoter": (
        "Great product, the team loves the reports.",
        "Support is fast and helpful.",
        "Saves us hours every week.",
        "Easy to roll out to new teams.",
        "",
    ),
    "passive": (
        "Does the job; exports could be faster.",
        "Good, but we need more integrations.",
        "Solid, with a few rough edges in reporting.",
        "",
    ),
    "detractor": (
        "Too many bugs since the last release.",
        "We don't get enough value for the price.",
        "Support takes days to answer.",
        "Hard to get the team to adopt it.",
        "Missing features we were promised.",
    ),
}
CSAT_COMMENTS = {
    "good": ("Quick fix, thanks!", "Solved on the first reply.", "Very helpful agent.", ""),
    "ok": ("Took a while, but it's solved.", "Fine.", ""),
    "bad": ("Still not really fixed.", "Had to explain the problem three times.", "Far too slow."),
}
TOUCHPOINTS = {
    "checkin": (
        ("call", "Monthly check-in with {c}: usage is steady, no blockers."),
        ("call", "Check-in with {c}: walked through the new reporting features."),
        ("meeting", "Quarterly business review with {c}: adoption and goals reviewed."),
        ("email", "Sent {c} the release notes and an invite to the next training."),
        ("note", "{c} asked about adding seats for another team."),
    ),
    "onboarding": (
        ("meeting", "Kickoff with {c}: success plan and onboarding timeline agreed."),
        ("call", "Admin training with {c}: roles, SSO and the first import."),
        ("email", "Sent {c} the onboarding checklist and help-center links."),
        ("call", "Onboarding check-in with {c}: first reports are live."),
    ),
    "risk": (
        ("call", "Escalation call with {c}: frustrated by the open tickets; action plan agreed."),
        ("note", "Renewal risk: {c} says they are evaluating alternatives."),
        ("meeting", "Recovery meeting with {c} and support: reviewed the open issues."),
        ("note", "Usage is dropping; {c} did not answer the last two emails."),
    ),
}


# --- the domain function ------------------------------------------------------------------


@dataclass
class _Plan:
    """What one account will look like, before anything is written."""

    account: Account
    pattern: str
    rate: float
    contacts: list[Contact]
    first_day: dt.date
    last_day: dt.date
    quiet_since: dt.date | None = None


def seed_demo(
    *,
    accounts: int = 300,
    seed: int = 7,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> DemoSummary:
    """Create the demo users, teams and ``accounts`` accounts with their history, all or nothing.

    Raises ``DemoDataExists`` if any account exists. ``progress(done, total)`` is called as the
    accounts' events are stored.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if now is None:
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(dt.UTC)
    rng = random.Random(seed)

    with transaction.atomic():
        if Account.objects.exists():
            raise DemoDataExists("accounts already exist")
        users, users_created = _ensure_users()
        teams = _ensure_teams(users)
        plans = _plan_accounts(rng, count=accounts, now=now, users=users, teams=teams)
        Account.objects.bulk_create([plan.account for plan in plans], batch_size=500)
        for plan in plans:
            for contact in plan.contacts:
                contact.account_id = plan.account.pk
        Contact.objects.bulk_create(
            [contact for plan in plans for contact in plan.contacts], batch_size=1_000
        )
        event_count = _store_events(rng, plans, now=now, progress=progress)
        closed_tickets = _store_tickets(rng, plans, now=now)
        _store_surveys(rng, plans, closed_tickets, now=now)
        _store_touchpoints(rng, plans, now=now)

        patterns = Counter(plan.pattern for plan in plans)
        return DemoSummary(
            now=now,
            users_created=users_created,
            teams=len(teams),
            accounts=len(plans),
            churned=patterns["churned"],
            contacts=Contact.objects.count(),
            events=event_count,
            event_days=EventDaily.objects.count(),
            tickets=Ticket.objects.count(),
            open_tickets=Ticket.objects.filter(
                status__in=[Ticket.Status.OPEN, Ticket.Status.PENDING]
            ).count(),
            surveys=SurveyResponse.objects.count(),
            touchpoints=Touchpoint.objects.count(),
            segments=dict(sorted(Counter(plan.account.segment for plan in plans).items())),
            patterns=dict(sorted(patterns.items())),
            logins=[
                DemoLogin(user.username, DEMO_PASSWORD, user.role, user.team or "—") for user in DEMO_USERS
            ],
        )


# --- users and teams ----------------------------------------------------------------------


def _ensure_users() -> tuple[dict[str, object], int]:
    """The demo users, created if missing; existing ones keep their password."""
    user_model = get_user_model()
    existing = {
        user.username: user
        for user in user_model.objects.filter(username__in=[u.username for u in DEMO_USERS])
    }
    # One hash for all: PBKDF2 is slow on purpose, and the password is public anyway.
    password = make_password(DEMO_PASSWORD)
    groups = {
        group.name: group for group in Group.objects.filter(name__in=[ROLE_ADMIN, ROLE_MANAGER, ROLE_CSM])
    }
    users: dict[str, object] = {}
    created = 0
    for spec in DEMO_USERS:
        user = existing.get(spec.username)
        if user is None:
            is_admin = spec.role == ROLE_ADMIN
            user = user_model.objects.create(
                username=spec.username,
                first_name=spec.first_name,
                last_name=spec.last_name,
                email=spec.email,
                password=password,
                is_staff=is_admin,
                is_superuser=is_admin,
            )
            created += 1
        user.groups.add(groups[spec.role])
        users[spec.username] = user
    return users, created


def _ensure_teams(users: dict[str, object]) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    for name in (TEAM_NORTH, TEAM_SOUTH):
        manager = next(users[u.username] for u in DEMO_USERS if u.team == name and u.role == ROLE_MANAGER)
        team, _ = Team.objects.get_or_create(name=name, defaults={"manager": manager})
        if team.manager_id is None:
            team.manager = manager
            team.save(update_fields=["manager"])
        team.members.add(*(users[u.username] for u in DEMO_USERS if u.team == name and u.role == ROLE_CSM))
        teams[name] = team
    return teams


# --- accounts and contacts ----------------------------------------------------------------


def _plan_accounts(rng: random.Random, *, count: int, now: dt.datetime, users, teams) -> list[_Plan]:
    today = now.date()
    segments = _apportion(rng, {name: spec[0] for name, spec in SEGMENTS.items()}, count)
    patterns = _apportion(rng, PATTERNS, count)
    names = _company_names(rng, count)
    csms = {
        team: [users[u.username] for u in DEMO_USERS if u.team == team and u.role == ROLE_CSM]
        for team in teams
    }
    assigned = Counter()
    plans = []
    for index in range(count):
        segment, pattern, (name, domain) = segments[index], patterns[index], names[index]
        _, (low, high), tiers, (min_contacts, max_contacts), rate = SEGMENTS[segment]
        team_name = (TEAM_NORTH, TEAM_SOUTH)[index % 2]
        owner = csms[team_name][assigned[team_name] % len(csms[team_name])]
        assigned[team_name] += 1

        account = Account(
            external_id=f"crm-{index + 1:05d}",
            name=name,
            domain=domain,
            segment=segment,
            tier=tiers[0] if rng.random() < 0.6 else tiers[1],
            arr=_arr(rng, segment, low, high),
            currency="USD",
            owner=owner,
            team=teams[team_name],
        )
        first_day = today - dt.timedelta(days=HISTORY_DAYS - 1)
        last_day = today
        quiet_since = None
        if pattern == "onboarding":
            account.contract_start = today - dt.timedelta(days=rng.randint(3, 60))
            account.renewal_date = _add_years(account.contract_start, 1)
            first_day = account.contract_start
        elif pattern == "churned":
            account.status = Account.Status.CHURNED
            account.churned_at = today - dt.timedelta(days=rng.randint(10, 150))
            account.churn_reason = rng.choice(CHURN_REASONS)
            account.renewal_date = account.churned_at
            account.contract_start = _add_years(account.churned_at, -rng.randint(1, 3))
            last_day = account.churned_at
        else:
            # Declining accounts tend to renew soon: that is what makes them urgent.
            days = rng.randint(15, 200) if pattern == "declining" else rng.randint(1, 365)
            account.renewal_date = today + dt.timedelta(days=days)
            years = rng.randint(1, 4)
            account.contract_start = _add_years(account.renewal_date, -years)
            if account.contract_start > first_day - dt.timedelta(days=20):
                account.contract_start = _add_years(account.renewal_date, -years - 1)
            if pattern == "quiet":
                quiet_since = today - dt.timedelta(days=rng.randint(21, 75))

        contacts = _contacts(rng, domain, rng.randint(min_contacts, max_contacts))
        plans.append(
            _Plan(
                account=account,
                pattern=pattern,
                rate=rate * rng.uniform(0.6, 1.4),
                contacts=contacts,
                first_day=first_day,
                last_day=last_day,
                quiet_since=quiet_since,
            )
        )
    return plans


def _apportion(rng: random.Random, shares: dict[str, float], count: int) -> list[str]:
    """``count`` labels in the given shares (largest remainder), shuffled."""
    exact = {name: share * count for name, share in shares.items()}
    counts = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(shares, key=lambda name: (-(exact[name] - counts[name]), name))
    for name in by_remainder[: count - sum(counts.values())]:
        counts[name] += 1
    labels = [name for name in shares for _ in range(counts[name])]
    rng.shuffle(labels)
    return labels


def _company_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """Unique ``(name, domain)`` pairs, e.g. ("Cedar Logistics Inc.", "cedarlogistics.example")."""
    names: list[tuple[str, str]] = []
    taken_names: set[str] = set()
    taken_domains: set[str] = set()
    while len(names) < count:
        for attempt in range(50):
            if rng.random() < 0.75:
                base = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
                slug = _ascii(base).replace(" ", "")
            else:
                head = rng.choice(COMPOUND_HEADS) + rng.choice(COMPOUND_TAILS)
                slug = _ascii(head)
                base = head if rng.random() < 0.5 else f"{head} {rng.choice(COMPANY_KINDS)}"
            if attempt == 49:  # the word lists are exhausted: number the name
                base, slug = f"{base} {len(names) + 1}", f"{slug}{len(names) + 1}"
            domain = f"{slug}.{CUSTOMER_TLD}"
            if base in taken_names or domain in taken_domains:
                continue
            suffix = rng.choice(LEGAL_SUFFIXES)
            taken_names.add(base)
            taken_domains.add(domain)
            names.append((f"{base} {suffix}" if suffix else base, domain))
            break
    return names


def _arr(rng: random.Random, segment: str, low: int, high: int) -> Decimal:
    if segment == "enterprise":
        # Log-uniform: most enterprise deals are nearer the low end.
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        return Decimal(round(value, -3))
    return Decimal(round(rng.uniform(low, high), -2))


def _contacts(rng: random.Random, domain: str, count: int) -> list[Contact]:
    contacts: list[Contact] = []
    emails: set[str] = set()
    has_champion = rng.random() < 0.65
    while len(contacts) < count:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{_ascii(first)}.{_ascii(last)}@{domain}"
        if email in emails:
            continue
        emails.add(email)
        senior = not contacts
        contacts.append(
            Contact(
                name=f"{first} {last}",
                email=email,
                title=rng.choice(SENIOR_TITLES if senior else TITLES),
                is_champion=senior and has_champion,
            )
        )
    return contacts


# --- events -------------------------------------------------------------------------------


def _store_events(
    rng: random.Random, plans: list[_Plan], *, now: dt.datetime, progress: Progress | None
) -> int:
    """Generate each account's events and ingest them in batches; return how many were stored."""
    scope = Account.objects.all()
    stored = 0
    batch: list[dict] = []
    for done, plan in enumerate(plans, start=1):
        batch.extend(_account_events(rng, plan, now=now))
        while len(batch) >= MAX_EVENTS_PER_BATCH:
            stored += ingest_events(raw_rows=batch[:MAX_EVENTS_PER_BATCH], accounts=scope, now=now).accepted
            del batch[:MAX_EVENTS_PER_BATCH]
        if progress is not None:
            progress(done, len(plans))
    if batch:
        stored += ingest_events(raw_rows=batch, accounts=scope, now=now).accepted
    return stored


def _activity(plan: _Plan, day: dt.date) -> float:
    """How active the account is on ``day``, relative to its usual rate."""
    span = max((plan.last_day - plan.first_day).days, 1)
    t = (day - plan.first_day).days / span  # 0 at the first day of history, 1 at the last
    if plan.pattern == "growing":
        return 0.35 + 1.3 * t
    if plan.pattern in ("declining", "churned"):
        return max(0.08, 1.3 - 1.2 * t**1.3)
    if plan.pattern == "quiet":
        return 1.0 if day < plan.quiet_since else 0.0
    if plan.pattern == "onboarding":
        return min(1.2, 0.3 + (day - plan.first_day).days / 30)
    return 1.0 + 0.1 * math.sin(t * 12)


def _account_events(rng: random.Random, plan: _Plan, *, now: dt.datetime) -> list[dict]:
    account = plan.account
    mix = EVENT_MIX.get(plan.pattern, EVENT_MIX["default"])
    names, name_weights = list(mix), _cumulative(mix.values())
    emails = [contact.email for contact in plan.contacts]
    # The champion (or first contact) uses the product most; some contacts hardly at all.
    contact_weights = _cumulative(
        [4.0 if index == 0 else rng.choice((0.3, 1.0, 1.5)) for index in range(len(emails))]
    )
    order_low, order_high = ORDER_VALUES[account.segment]
    rows: list[dict] = []

    def add(when: dt.datetime, name: str, **extra) -> None:
        if when > now:
            return
        rows.append(
            {
                "account": account.external_id,
                "name": name,
                "occurred_at": when.isoformat(),
                "contact": rng.choices(emails, cum_weights=contact_weights)[0],
                "idempotency_key": f"demo-{account.external_id}-{len(rows) + 1:06d}",
                **extra,
            }
        )

    day = plan.first_day
    while day <= plan.last_day:
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        weekday_factor = 1.0 if day.weekday() < 5 else 0.2
        expected = plan.rate * _activity(plan, day) * weekday_factor * rng.uniform(0.8, 1.2)
        for _ in range(_poisson(rng, expected)):
            when = midnight + dt.timedelta(seconds=rng.randint(7 * 3600, 19 * 3600))
            name = rng.choices(names, cum_weights=name_weights)[0]
            if name == "report_viewed":
                add(when, name, properties={"report": rng.choice(REPORTS)})
            elif name == "export":
                add(when, name, properties={"format": rng.choice(EXPORT_FORMATS)})
            elif name == "order_placed":
                add(when, name, value=f"{rng.uniform(order_low, order_high):.2f}")
            else:
                add(when, name)
        day += dt.timedelta(days=1)

    # Integrations are connected a few times: early in onboarding, or now and then.
    connections = rng.randint(1, 3) if plan.pattern != "quiet" else rng.randint(0, 1)
    for _ in range(connections):
        if plan.pattern == "onboarding":
            offset = rng.randint(0, 14)
        else:
            offset = rng.randint(0, max((plan.last_day - plan.first_day).days - 30, 0))
        when = dt.datetime.combine(plan.first_day + dt.timedelta(days=offset), dt.time(10), tzinfo=dt.UTC)
        add(
            when + dt.timedelta(minutes=rng.randint(0, 360)),
            "integration_connected",
            properties={"integration": rng.choice(INTEGRATIONS)},
        )
    return rows


def _poisson(rng: random.Random, expected: float) -> int:
    if expected <= 0:
        return 0
    if expected > 30:
        return max(0, round(rng.gauss(expected, math.sqrt(expected))))
    limit, count, product = math.exp(-expected), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# --- tickets, surveys, touchpoints --------------------------------------------------------


def _store_tickets(rng: random.Random, plans: list[_Plan], *, now: dt.datetime) -> list[tuple[_Plan, dict]]:
    """Create tickets through ``upsert_tickets``; return the solved ones (for CSAT answers)."""
    rows: list[dict] = []
    closed: list[tuple[_Plan, dict]] = []
    for plan in plans:
        count = {
            "declining": rng.randint(2, 5),
            "onboarding": rng.randint(1, 3),
            "churned": rng.randint(1, 4),
            "quiet": rng.randint(0, 1),
        }.get(plan.pattern, rng.randint(0, 3))
        for number in range(count):
            escalation = plan.pattern == "declining" and number == 0
            kind = (
                "escalation"
                if escalation
                else ("setup" if plan.pattern == "onboarding" else rng.choice(("issue", "question", "issue")))
            )
            if escalation:
                opened = _moment(rng, now - dt.timedelta(days=rng.randint(1, 20)), now)
            else:
                last_day = plan.quiet_since or plan.last_day
                opened = _moment(rng, _start_of(plan.first_day), _end_of(last_day, now))
            age = (now - opened).days
            if escalation:
                status, priority = rng.choice(("open", "pending")), rng.choice(("urgent", "urgent", "high"))
            else:
                recent = age < 10 and plan.pattern != "churned"
                status = (
                    rng.choice(("open", "pending", "solved")) if recent else rng.choice(("solved", "closed"))
                )
                priority = rng.choices(("low", "normal", "high", "urgent"), weights=(3, 8, 3, 1))[0]
                if plan.pattern == "declining" and status in ("open", "pending"):
                    priority = "high"
            closed_at = None
            if status in ("solved", "closed"):
                closed_at = min(opened + dt.timedelta(hours=rng.randint(2, 24 * 6)), now)
            row = {
                "account": plan.account.external_id,
                "external_id": f"tkt-{len(rows) + 1:06d}",
                "subject": rng.choice(TICKET_SUBJECTS[kind]),
                "priority": priority,
                "status": status,
                "opened_at": opened.isoformat(),
                "closed_at": closed_at.isoformat() if closed_at else None,
            }
            rows.append(row)
            if closed_at is not None:
                closed.append((plan, row))
    scope = Account.objects.all()
    for start in range(0, len(rows), 1_000):
        upsert_tickets(raw_rows=rows[start : start + 1_000], accounts=scope, now=now)
    return closed


def _store_surveys(rng: random.Random, plans: list[_Plan], closed_tickets, *, now: dt.datetime) -> None:
    """NPS waves (detractors where usage declines) and CSAT after some solved tickets."""
    rows: list[dict] = []

    def add(plan: _Plan, kind: str, score: int, comment: str, when: dt.datetime) -> None:
        if when > now:
            return
        rows.append(
            {
                "account": plan.account.external_id,
                "contact": rng.choice(plan.contacts).email,
                "kind": kind,
                "score": score,
                "comment": comment,
                "responded_at": when.isoformat(),
                "external_id": f"demo-{kind}-{len(rows) + 1:06d}",
            }
        )

    today = now.date()
    for plan in plans:
        # Two NPS waves: about five months ago and about six weeks ago.
        for wave, days_ago in enumerate((150, 45)):
            day = today - dt.timedelta(days=days_ago + rng.randint(-10, 10))
            if not plan.first_day <= day <= plan.last_day or rng.random() < 0.25:
                continue
            late = wave == 1 or plan.pattern == "churned"
            if plan.pattern in ("declining", "churned") and late:
                score = rng.randint(0, 6)
            elif plan.pattern in ("declining", "quiet"):
                score = rng.randint(5, 8)
            elif plan.pattern == "growing":
                score = rng.choice((8, 9, 9, 10, 10))
            else:
                score = rng.choice((6, 7, 8, 8, 9, 9, 10, 10))
            band = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
            when = _moment(rng, _start_of(day), _end_of(day, now))
            add(plan, "nps", score, rng.choice(NPS_COMMENTS[band]), when)
    for plan, ticket in closed_tickets:
        if rng.random() < 0.5:
            continue
        if plan.pattern in ("declining", "churned"):
            score = rng.choice((1, 2, 2, 3, 4))
        else:
            score = rng.choice((3, 4, 4, 5, 5, 5))
        mood = "good" if score >= 4 else "ok" if score == 3 else "bad"
        when = dt.datetime.fromisoformat(ticket["closed_at"]) + dt.timedelta(hours=rng.randint(1, 30))
        add(plan, "csat", score, rng.choice(CSAT_COMMENTS[mood]), when)
    scope = Account.objects.all()
    for start in range(0, len(rows), 1_000):
        record_surveys(raw_rows=rows[start : start + 1_000], accounts=scope, now=now)


def _store_touchpoints(rng: random.Random, plans: list[_Plan], *, now: dt.datetime) -> None:
    """The owners' calls, meetings, emails and notes, written with one bulk insert."""
    touchpoints: list[Touchpoint] = []
    today = now.date()
    for plan in plans:
        names = [contact.name for contact in plan.contacts]

        def add(day: dt.date, kind: str, summary: str, plan=plan, names=names) -> None:
            when = _moment(
                rng, _start_of(day) + dt.timedelta(hours=8), _end_of(day, now) - dt.timedelta(hours=5)
            )
            if when <= now:
                touchpoints.append(
                    Touchpoint(
                        account_id=plan.account.pk,
                        author_id=plan.account.owner_id,
                        kind=kind,
                        occurred_at=when,
                        summary=summary.format(c=rng.choice(names)),
                    )
                )

        if plan.pattern == "onboarding":
            for index, (kind, summary) in enumerate(TOUCHPOINTS["onboarding"]):
                day = plan.first_day + dt.timedelta(days=index * rng.randint(5, 9))
                if day <= today:
                    add(day, kind, summary)
            continue
        # Regular check-ins; an account that went quiet was also left alone.
        stop = plan.quiet_since - dt.timedelta(days=10) if plan.quiet_since else plan.last_day
        if plan.pattern == "declining":
            stop = today - dt.timedelta(days=30)
        day = plan.first_day + dt.timedelta(days=rng.randint(0, 20))
        while day <= stop:
            add(day, *rng.choice(TOUCHPOINTS["checkin"]))
            day += dt.timedelta(days=rng.randint(18, 40))
        if plan.pattern == "declining":
            for kind, summary in rng.sample(TOUCHPOINTS["risk"], rng.randint(2, 3)):
                add(today - dt.timedelta(days=rng.randint(0, 28)), kind, summary)
        if plan.pattern == "churned":
            add(plan.last_day, "call", f"Exit call with {{c}}: {plan.account.churn_reason.lower()}.")
    Touchpoint.objects.bulk_create(touchpoints, batch_size=1_000)


# --- helpers ------------------------------------------------------------------------------


def _cumulative(weights) -> list[float]:
    total, cumulative = 0.0, []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _end_of(day: dt.date, now: dt.datetime) -> dt.datetime:
    return min(_start_of(day) + dt.timedelta(days=1), now)


def _moment(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A whole-minute moment in ``[start, end]`` (``start`` when the range is empty)."""
    minutes = max(int((end - start).total_seconds() // 60), 0)
    return start + dt.timedelta(minutes=rng.randint(0, minutes))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _ascii(text: str) -> str:
    """Lower-case ASCII for emails and domains ("García" → "garcia")."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
