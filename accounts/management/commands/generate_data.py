"""``manage.py generate_data``: fill PostgreSQL fast (COPY) with synthetic accounts and events."""

import dataclasses
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.generation import SIZES, GenerationRefused, generate_data, size_for


class Command(BaseCommand):
    help = (
        "Generate teams, CSMs, accounts, contacts, events (and their daily rollup), tickets and NPS "
        "answers with PostgreSQL's COPY. Named sizes: --size S (100,000 accounts, 5M events) or L."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--size", choices=sorted(SIZES), help="A named size; the options below override it."
        )
        parser.add_argument("--accounts", type=int, help="How many accounts (default 1,000).")
        parser.add_argument("--days", type=int, help="Days of history (default 180).")
        parser.add_argument(
            "--events-per-account-day", type=float, help="Average events per account and day (default 0.28)."
        )
        parser.add_argument("--tickets", type=int, help="Default: one per 5 accounts.")
        parser.add_argument("--nps", type=int, help="NPS answers; default: one per 10 accounts.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed: same seed, same data.")
        parser.add_argument(
            "--append", action="store_true", help="Add to a database that already holds accounts."
        )

    def handle(self, *args, size, seed: int, append: bool, verbosity: int, **options):
        base = SIZES[size] if size else size_for(accounts=1_000, days=180, events_per_account_day=0.28)
        accounts = options["accounts"] or base.accounts
        if accounts != base.accounts or options["days"] or options["events_per_account_day"] is not None:
            base = size_for(
                accounts=accounts,
                days=options["days"] or base.days,
                events_per_account_day=(
                    options["events_per_account_day"]
                    if options["events_per_account_day"] is not None
                    else base.events_per_account_day
                ),
            )
        chosen = dataclasses.replace(
            base,
            tickets=options["tickets"] if options["tickets"] is not None else base.tickets,
            nps=options["nps"] if options["nps"] is not None else base.nps,
        )
        bar = tqdm(
            total=chosen.accounts, desc="Events", unit="account", disable=None if verbosity >= 1 else True
        )
        started = time.perf_counter()
        try:
            summary = generate_data(
                size=chosen, seed=seed, append=append, progress=lambda done, total: bar.update(done - bar.n)
            )
        except (GenerationRefused, ValueError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(f"Generated in {elapsed:.1f} s (as of {summary.now:%Y-%m-%d %H:%M} UTC):")
        )
        for field in dataclasses.fields(summary):
            if field.name != "now":
                self.stdout.write(f"  {field.name:<12} {getattr(summary, field.name):>12,}")
