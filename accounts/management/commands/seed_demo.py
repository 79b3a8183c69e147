"""``manage.py seed_demo``: fill an empty database with deterministic demo data."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from accounts.demo import DemoDataExists, DemoSummary, seed_demo


def aware_datetime(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(value)
    return parsed


class Command(BaseCommand):
    help = "Create demo users, teams and accounts with 180 days of events, tickets, surveys and touchpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=300, help="How many accounts (default 300).")
        parser.add_argument("--seed", type=int, default=7, help="Random seed: same seed, same data.")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing (and succeed) when accounts already exist.",
        )
        parser.add_argument(
            "--now",
            type=aware_datetime,
            default=None,
            help="Pretend it is this ISO-8601 time (with a time zone); default: now, to the hour.",
        )

    def handle(self, *args, accounts: int, seed: int, if_empty: bool, now, verbosity: int, **options):
        if accounts < 1:
            raise CommandError("--accounts must be at least 1.")
        bar = tqdm(total=accounts, desc="Events", unit="account", disable=None if verbosity >= 1 else True)

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        try:
            summary = seed_demo(accounts=accounts, seed=seed, now=now, progress=progress)
        except DemoDataExists:
            if if_empty:
                self.stdout.write("Demo data not created: the database already has accounts.")
                return
            raise CommandError(
                "The database already has accounts; seed_demo only fills an empty database "
                "(use --if-empty to skip quietly)."
            ) from None
        finally:
            bar.close()
        self._report(summary)

    def _report(self, summary: DemoSummary) -> None:
        segments = ", ".join(f"{name} {count}" for name, count in summary.segments.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data created (as of {summary.now:%Y-%m-%d %H:%M} UTC):"))
        for label, value in (
            ("users created", summary.users_created),
            ("teams", summary.teams),
            ("accounts", f"{summary.accounts} ({segments}; {summary.churned} churned)"),
            ("contacts", summary.contacts),
            ("events", f"{summary.events} ({summary.event_days} daily rollup rows)"),
            ("tickets", f"{summary.tickets} ({summary.open_tickets} open or pending)"),
            ("survey answers", summary.surveys),
            ("touchpoints", summary.touchpoints),
        ):
            self.stdout.write(f"  {label:<15} {value}")
        self.stdout.write("")
        self.stdout.write("Demo logins:")
        if summary.users_created < len(summary.logins):
            self.stdout.write("  (users that existed before kept their own password)")
        rows = [("username", "password", "role", "team")] + [
            (login.username, login.password, login.role, login.team) for login in summary.logins
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        for index, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write(f"  {line}".rstrip())
            if index == 0:
                self.stdout.write("  " + "  ".join("-" * width for width in widths))
