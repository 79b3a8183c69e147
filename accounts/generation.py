"""Synthetic data at scale, written with PostgreSQL's COPY (``manage.py generate_data``).

The demo data (``demo.py``) goes through ingestion row by row to tell a story; this module fills
a database with hundreds of thousands of accounts and millions of events for benchmarks, in
minutes. Everything is drawn from one ``random.Random(seed)`` and placed relative to ``now``, so
the same seed, sizes and ``now`` on the same starting database give the same rows. Ids are
reserved from the tables' sequences, so do not run it beside live writers.
"""

import datetime as dt
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import Account, Contact, Event, EventDaily, SurveyResponse, Team, Ticket, Touchpoint
from accounts.visibility import ROLE_CSM, ROLE_MANAGER

Progress = Callable[[int, int], None]

GENERATED_PASSWORD = "lifeline"
# Rows handed to COPY per write: large enough to keep the server busy, small enough for memory.
COPY_CHUNK = 20_000


@dataclass(frozen=True)
class Size:
    accounts: int
    days: int
    events_per_account_day: float
    tickets: int
    nps: int
    teams: int
    csms: int


def size_for(*, accounts: int, days: int, events_per_account_day: float) -> Size:
    """Tickets, NPS answers, teams and CSMs in the proportions of the named sizes (L: per 1M accounts)."""
    return Size(
        accounts=accounts,
        days=days,
        events_per_account_day=events_per_account_day,
        tickets=accounts // 5,
        nps=accounts // 10,
        teams=max(1, accounts // 20_000),
        csms=max(2, accounts // 2_000),
    )


# Issue 7: S = 100,000 accounts and 5M events over 180 days; L = 1M accounts, 50M events,
# 200,000 tickets, 100,000 NPS answers, 50 teams, 500 CSMs.
SIZES = {
    "S": size_for(accounts=100_000, days=180, events_per_account_day=5_000_000 / (100_000 * 180)),
    "L": size_for(accounts=1_000_000, days=180, events_per_account_day=50_000_000 / (1_000_000 * 180)),
}


class GenerationRefused(Exception):
    """The database is not PostgreSQL, or already holds accounts and ``append`` was not asked."""


@dataclass(frozen=True)
class GenerationSummary:
    now: dt.datetime
    teams: int
    users: int
    accounts: int
    contacts: int
    events: int
    event_days: int
    tickets: int
    surveys: int
    touchpoints: int


SEGMENTS = (
    # segment, share, ARR range, tier, contacts range, usage multiplier
    ("smb", 0.50, (5_000, 25_000), "starter", (2, 3), 0.6),
    ("mid-market", 0.35, (25_000, 120_000), "growth", (3, 4), 1.2),
    ("enterprise", 0.15, (120_000, 900_000), "premier", (4, 6), 2.5),
)
PATTERNS = (
    # pattern, share: healthy accounts use the product steadily, growing ones more and more,
    # declining ones less and less, quiet ones stop, onboarding ones started recently.
    ("healthy", 0.45),
    ("growing", 0.15),
    ("declining", 0.15),
    ("quiet", 0.10),
    ("onboarding", 0.10),
    ("churned", 0.05),
)
EVENT_NAMES = ("login", "report_viewed", "export", "invite_sent", "order_placed", "integration_connected")
EVENT_WEIGHTS = (52, 24, 7, 4, 12, 1)
WORDS = [
    "Acorn",
    "Alder",
    "Alpine",
    "Amber",
    "Anchor",
    "Apex",
    "Arbor",
    "Arrow",
    "Aspen",
    "Atlas",
    "Aurora",
    "Beacon",
    "Birch",
    "Boulder",
    "Cedar",
    "Cobalt",
    "Copper",
    "Coral",
    "Crown",
    "Delta",
    "Ember",
    "Falcon",
    "Fjord",
    "Granite",
    "Harbor",
    "Helix",
    "Horizon",
    "Indigo",
    "Juniper",
    "Kestrel",
    "Lantern",
    "Linden",
    "Maple",
    "Meridian",
    "Monarch",
    "Nova",
    "Orchid",
    "Osprey",
    "Pacific",
    "Polar",
    "Prairie",
    "Redwood",
    "Sequoia",
    "Sierra",
    "Slate",
    "Summit",
    "Timber",
    "Topaz",
    "Tundra",
    "Vantage",
    "Willow",
    "Zenith",
]
KINDS = [
    "Analytics",
    "Bank",
    "Biotech",
    "Capital",
    "Energy",
    "Foods",
    "Freight",
    "Health",
    "Labs",
    "Logistics",
    "Media",
    "Retail",
    "Software",
]
FIRST_NAMES = [
    "Aisha",
    "Ana",
    "Ben",
    "Camila",
    "Chen",
    "David",
    "Elena",
    "Ethan",
    "Grace",
    "Ivan",
    "Julia",
    "Kai",
    "Leo",
    "Maya",
    "Noah",
    "Omar",
    "Sara",
    "Wei",
]
LAST_NAMES = [
    "Bauer",
    "Costa",
    "Evans",
    "Garcia",
    "Gupta",
    "Ito",
    "Kumar",
    "Lee",
    "Meyer",
    "Nguyen",
    "Okoye",
    "Patel",
    "Rossi",
    "Silva",
    "Smith",
]
TICKET_SUBJECTS = (
    "Dashboard slow to load",
    "Export times out",
    "SSO setup",
    "Report totals don't match",
    "Integration sync stuck",
    "Billing question",
)


def generate_data(
    *,
    size: Size,
    seed: int = 1,
    now: dt.datetime | None = None,
    append: bool = False,
    progress: Progress | None = None,
) -> GenerationSummary:
    """Write ``size``'s teams, CSMs, accounts, contacts, events (+ daily rollup), tickets, NPS answers.

    One transaction: all or nothing. Raises ``GenerationRefused`` on a database other than
    PostgreSQL, or when accounts exist and ``append`` is false. ``progress(done, total)`` is
    called as the accounts' events are written.
    """
    if connection.vendor != "postgresql":
        raise GenerationRefused(
            "generate_data writes with PostgreSQL's COPY; point DATABASE_URL at PostgreSQL "
            "(e.g. postgres://postgres@127.0.0.1:5432/lifeline)."
        )
    if size.accounts < 1 or size.days < 1 or size.events_per_account_day < 0:
        raise ValueError("accounts and days must be at least 1, events per account-day not negative")
    now = (now or timezone.now().replace(minute=0, second=0, microsecond=0)).astimezone(dt.UTC)
    rng = random.Random(seed)
    with transaction.atomic(), connection.cursor() as cursor:
        existing = Account.objects.count()
        if existing and not append:
            raise GenerationRefused(
                f"The database already holds {existing} accounts; pass --append to add more."
            )
        cursor.execute("SET LOCAL synchronous_commit = off")
        _skip_foreign_key_checks(cursor)
        csms, teams, users = _write_people(cursor, rng, size=size, now=now)
        accounts = _write_accounts(cursor, rng, size=size, csms=csms, offset=existing, now=now)
        contacts = _write_contacts(cursor, rng, accounts, now=now)
        events, event_days = _write_events(
            cursor, rng, accounts, contacts, size=size, now=now, progress=progress
        )
        tickets = _write_tickets(cursor, rng, accounts, count=size.tickets, offset=existing, now=now)
        surveys = _write_nps(cursor, rng, accounts, contacts, count=size.nps, offset=existing, now=now)
        touchpoints = _write_touchpoints(cursor, rng, accounts, now=now)
    return GenerationSummary(
        now=now,
        teams=teams,
        users=users,
        accounts=len(accounts),
        contacts=sum(len(c) for c in contacts),
        events=events,
        event_days=event_days,
        tickets=tickets,
        surveys=surveys,
        touchpoints=touchpoints,
    )


# --- plumbing -------------------------------------------------------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _reserve_ids(cursor, model, count: int) -> int:
    """The first of ``count`` consecutive ids taken from the table's sequence."""
    table = model._meta.db_table
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
        [table, table, count],
    )
    return cursor.fetchone()[0] - count + 1


def _skip_foreign_key_checks(cursor) -> None:
    """Skip the per-row foreign-key triggers when allowed (superuser): every id written is one just made.

    They cost more than the COPY itself (two lookups an event). Elsewhere the checks run at commit.
    """
    try:
        with transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:
        pass  # not a superuser: the checks run, slower


def _copy_rows(cursor, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> int:
    """COPY tuples (adapted by psycopg) into ``table``; returns how many."""
    count = 0
    column_list = ", ".join(connection.ops.quote_name(c) for c in columns)
    with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _pick(rng: random.Random, table) -> tuple:
    """One row of a (value, share, …) table, by share."""
    roll, total = rng.random(), 0.0
    for row in table:
        total += row[1]
        if roll < total:
            return row
    return table[-1]


# --- people ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Csm:
    user_id: int
    team_id: int


def _write_people(cursor, rng: random.Random, *, size: Size, now: dt.datetime) -> tuple[list[_Csm], int, int]:
    """Teams, one manager each, and CSMs spread over the teams (all with the same password)."""
    user_model = get_user_model()
    csm_group, _ = Group.objects.get_or_create(name=ROLE_CSM)
    manager_group, _ = Group.objects.get_or_create(name=ROLE_MANAGER)
    first_team = _reserve_ids(cursor, Team, size.teams)
    first_user = _reserve_ids(cursor, user_model, size.teams + size.csms)
    password = make_password(GENERATED_PASSWORD)  # one hash for all: hashing costs ~0.3 s each
    users, memberships, csms = [], [], []
    for index in range(size.teams + size.csms):
        user_id = first_user + index
        manager = index < size.teams
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        username = f"gen-{'manager' if manager else 'csm'}-{user_id}"
        users.append(
            (
                user_id,
                password,
                False,
                username,
                first,
                last,
                f"{username}@lifeline.example",
                False,
                True,
                now,
            )
        )
        memberships.append((user_id, (manager_group if manager else csm_group).pk))
        if not manager:
            csms.append(_Csm(user_id, first_team + (index - size.teams) % size.teams))
    teams = [(first_team + t, f"Team {first_team + t}", first_user + t, now) for t in range(size.teams)]
    user_columns = ("id", "password", "is_superuser", "username", "first_name", "last_name", "email")
    user_columns += ("is_staff", "is_active", "date_joined")
    _copy_rows(cursor, _table(user_model), user_columns, iter(users))
    groups_table = connection.ops.quote_name(user_model.groups.through._meta.db_table)
    _copy_rows(cursor, groups_table, ("user_id", "group_id"), iter(memberships))
    _copy_rows(cursor, _table(Team), ("id", "name", "manager_id", "created_at"), iter(teams))
    members_table = connection.ops.quote_name(Team.members.through._meta.db_table)
    _copy_rows(cursor, members_table, ("team_id", "user_id"), ((c.team_id, c.user_id) for c in csms))
    return csms, len(teams), len(users)


# --- accounts and contacts ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    id: int
    external_id: str
    segment: str
    pattern: str
    usage: float  # the segment's multiplier of the average events per day
    first_day: int  # index of the first day with events (0 = the oldest day)
    last_day: int  # index of the last day with events (size.days - 1 = today)


def _write_accounts(
    cursor, rng: random.Random, *, size: Size, csms: list[_Csm], offset: int, now: dt.datetime
) -> list[_Account]:
    first_id = _reserve_ids(cursor, Account, size.accounts)
    today = now.date()
    accounts, rows = [], []
    for index in range(size.accounts):
        account_id = first_id + index
        number = offset + index + 1
        segment, _, (low, high), tier, _, usage = _pick(rng, SEGMENTS)
        pattern = _pick(rng, PATTERNS)[0]
        first_day, last_day = 0, size.days - 1
        if pattern == "onboarding":
            first_day = max(0, size.days - rng.randint(10, 60))
        elif pattern == "quiet":
            last_day = max(0, size.days - rng.randint(15, 45))
        elif pattern == "churned":
            last_day = max(0, size.days - rng.randint(20, 90))
        external_id = f"gen-{number:07d}"
        name = f"{rng.choice(WORDS)} {rng.choice(KINDS)} {number}"
        csm = csms[rng.randrange(len(csms))]
        started = today - dt.timedelta(days=size.days - first_day + rng.randint(0, 700))
        renewal = _next_anniversary(started, today)
        churned = pattern == "churned"
        rows.append(
            (
                account_id,
                external_id,
                name,
                f"{external_id}.example",
                segment,
                tier,
                round(rng.uniform(low, high), -2),
                "USD",
                csm.user_id,
                csm.team_id,
                started,
                renewal,
                (Account.Status.CHURNED if churned else Account.Status.ACTIVE).value,
                today - dt.timedelta(days=size.days - 1 - last_day) if churned else None,
                "Budget cuts" if churned else "",
                "",
                now,
                now,
            )
        )
        accounts.append(_Account(account_id, external_id, segment, pattern, usage, first_day, last_day))
    columns = ("id", "external_id", "name", "domain", "segment", "tier", "arr", "currency", "owner_id")
    columns += ("team_id", "contract_start", "renewal_date", "status", "churned_at", "churn_reason")
    columns += ("stage", "created_at", "updated_at")
    _copy_rows(cursor, _table(Account), columns, iter(rows))
    return accounts


def _next_anniversary(start: dt.date, today: dt.date) -> dt.date:
    years = today.year - start.year
    for shift in (years, years + 1, years + 2):
        try:
            day = start.replace(year=start.year + shift)
        except ValueError:  # 29 February
            day = start.replace(year=start.year + shift, day=28)
        if day > today:
            return day
    return today + dt.timedelta(days=365)


def _write_contacts(
    cursor, rng: random.Random, accounts: list[_Account], *, now: dt.datetime
) -> list[list[int]]:
    """Contacts of each account (the first one is the champion); returns their ids per account."""
    ranges = {segment: contacts for segment, _, _, _, contacts, _ in SEGMENTS}
    counts = [rng.randint(*ranges[a.segment]) for a in accounts]
    next_id = _reserve_ids(cursor, Contact, sum(counts))
    ids: list[list[int]] = []
    rows = []
    for account, count in zip(accounts, counts, strict=True):
        own = []
        for position in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first.lower()}.{last.lower()}.{position}@{account.external_id}.example"
            rows.append((next_id, account.id, f"{first} {last}", email, "", position == 0, "", now))
            own.append(next_id)
            next_id += 1
        ids.append(own)
    columns = ("id", "account_id", "name", "email", "title", "is_champion", "external_id", "created_at")
    _copy_rows(cursor, _table(Contact), columns, iter(rows))
    return ids


# --- events ---------------------------------------------------------------------------------------


def _day_weights(pattern: str, days: int, today: dt.date) -> list[float]:
    """How active an account of ``pattern`` is on each day (oldest first); weekends are quieter."""
    weights = []
    for index in range(days):
        t = index / max(days - 1, 1)
        if pattern == "growing":
            level = 0.35 + 1.3 * t
        elif pattern in ("declining", "churned"):
            level = max(0.08, 1.3 - 1.2 * t**1.3)
        else:
            level = 1.0 + 0.1 * math.sin(t * 12)
        weekday = (today - dt.timedelta(days=days - 1 - index)).weekday()
        weights.append(level * (1.0 if weekday < 5 else 0.2))
    return weights


def _write_events(
    cursor,
    rng: random.Random,
    accounts: list[_Account],
    contacts: list[list[int]],
    *,
    size: Size,
    now: dt.datetime,
    progress: Progress | None,
) -> tuple[int, int]:
    """COPY each account's events, and their daily rollup counted on the way; returns both counts.

    The rows are written as COPY text (the hot loop adapts nothing). The accounts are new, so
    their rollup rows are new too: COPY, no upsert.
    """
    today = now.date()
    day_text = [(today - dt.timedelta(days=size.days - 1 - i)).isoformat() for i in range(size.days)]
    # Events happen during working hours, 07:00-19:00 UTC, to the second.
    clock = [f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00" for s in range(7 * 3600, 19 * 3600)]
    now_text = now.isoformat()
    latest_today = max(now.hour * 3600 + now.minute * 60 - 7 * 3600, 1)  # today's events precede ``now``
    weights = {pattern: _day_weights(pattern, size.days, today) for pattern, _ in PATTERNS}
    name_weights = _cumulative(EVENT_WEIGHTS)
    mean_weight = {p: sum(w) / len(w) for p, w in weights.items()}
    columns = ("account_id", "contact_id", "name", "occurred_at", "value", "properties", "received_at")
    events, rollup = [], []
    written = rolled = 0
    with cursor.copy(f"COPY {_table(Event)} ({', '.join(columns)}) FROM STDIN") as copy:
        for done, (account, own_contacts) in enumerate(zip(accounts, contacts, strict=True), start=1):
            first, last = account.first_day, account.last_day
            span = weights[account.pattern][first : last + 1]
            expected = size.events_per_account_day * account.usage * sum(span) / mean_weight[account.pattern]
            count = _poisson(rng, expected)
            if count:
                days = rng.choices(range(first, last + 1), cum_weights=_cumulative(span), k=count)
                names = rng.choices(EVENT_NAMES, cum_weights=name_weights, k=count)
                # The champion (first contact) is the heaviest user.
                people_weights = _cumulative([3] + [1] * (len(own_contacts) - 1))
                people = rng.choices(own_contacts, cum_weights=people_weights, k=count)
                totals: dict[tuple[str, int], list[int]] = {}
                for day, name, contact in zip(days, names, people, strict=True):
                    second = rng.randrange(len(clock))
                    if day == size.days - 1 and second >= latest_today:
                        second = rng.randrange(latest_today)
                    cents = rng.randrange(4_000, 300_000) if name == "order_placed" else 0
                    value = f"{cents // 100}.{cents % 100:02d}" if cents else "\\N"
                    events.append(
                        f"{account.id}\t{contact}\t{name}\t{day_text[day]}{clock[second]}\t{value}\t{{}}\t{now_text}\n"
                    )
                    total = totals.setdefault((name, day), [0, 0])
                    total[0] += 1
                    total[1] += cents
                for (name, day), (number, cents) in totals.items():
                    rollup.append(
                        f"{account.id}\t{name}\t{day_text[day]}\t{number}\t{cents // 100}.{cents % 100:02d}\n"
                    )
                written += count
                rolled += len(totals)
            if len(events) >= COPY_CHUNK:
                copy.write("".join(events))
                events.clear()
            if progress is not None and (done % 1000 == 0 or done == len(accounts)):
                progress(done, len(accounts))
        if events:
            copy.write("".join(events))
    rollup_columns = "account_id, name, day, count, value_sum"
    with cursor.copy(f"COPY {_table(EventDaily)} ({rollup_columns}) FROM STDIN") as copy:
        for start in range(0, len(rollup), COPY_CHUNK):
            copy.write("".join(rollup[start : start + COPY_CHUNK]))
    return written, rolled


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


# --- tickets, NPS, touchpoints --------------------------------------------------------------------


def _moment(rng: random.Random, now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(minutes=rng.randrange(max(days, 1) * 24 * 60))


def _write_tickets(
    cursor, rng: random.Random, accounts: list[_Account], *, count: int, offset: int, now: dt.datetime
) -> int:
    """Tickets lean towards declining accounts; recent ones are still open."""
    declining = [a for a in accounts if a.pattern == "declining"] or accounts

    def rows():
        for number in range(count):
            account = rng.choice(declining) if rng.random() < 0.3 else rng.choice(accounts)
            opened = _moment(rng, now, 120)
            recent = now - opened < dt.timedelta(days=10)
            status = rng.choice(("open", "pending", "solved")) if recent else rng.choice(("solved", "closed"))
            priority = rng.choices(("low", "normal", "high", "urgent"), weights=(3, 8, 3, 1))[0]
            closed = (
                min(opened + dt.timedelta(hours=rng.randint(1, 144)), now)
                if status in ("solved", "closed")
                else None
            )
            yield (
                account.id,
                f"gen-{offset + number + 1:08d}",
                rng.choice(TICKET_SUBJECTS),
                priority,
                status,
                opened,
                closed,
                now,
            )

    columns = (
        "account_id",
        "external_id",
        "subject",
        "priority",
        "status",
        "opened_at",
        "closed_at",
        "updated_at",
    )
    return _copy_rows(cursor, _table(Ticket), columns, rows())


def _write_nps(
    cursor,
    rng: random.Random,
    accounts: list[_Account],
    contacts: list[list[int]],
    *,
    count: int,
    offset: int,
    now: dt.datetime,
) -> int:
    """NPS answers from the accounts' contacts; declining and churned accounts answer low."""

    def rows():
        for number in range(count):
            index = rng.randrange(len(accounts))
            account = accounts[index]
            if account.pattern in ("declining", "churned"):
                score = rng.randint(0, 6)
            elif account.pattern == "growing":
                score = rng.choice((8, 9, 9, 10, 10))
            else:
                score = rng.choice((5, 6, 7, 8, 8, 9, 9, 10))
            yield (
                account.id,
                rng.choice(contacts[index]),
                SurveyResponse.Kind.NPS.value,
                score,
                "",
                _moment(rng, now, 150),
                f"gen-nps-{offset + number + 1:08d}",
            )

    columns = ("account_id", "contact_id", "kind", "score", "comment", "responded_at", "external_id")
    return _copy_rows(cursor, _table(SurveyResponse), columns, rows())


def _write_touchpoints(cursor, rng: random.Random, accounts: list[_Account], *, now: dt.datetime) -> int:
    """The owner's last check-in of most accounts (the health score reads days since it)."""

    def rows():
        for account in accounts:
            if rng.random() < 0.7:
                yield (
                    account.id,
                    None,
                    Touchpoint.Kind.CALL.value,
                    _moment(rng, now, 90),
                    "Check-in call.",
                    now,
                )

    columns = ("account_id", "author_id", "kind", "occurred_at", "summary", "created_at")
    return _copy_rows(cursor, _table(Touchpoint), columns, rows())
