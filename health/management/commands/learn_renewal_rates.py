"""``manage.py learn_renewal_rates``: the daily renewal-forecast job.

Learns each band's renewal rate from history (the renewals forecast uses it), then keeps today's
forecast of each renewal 90 and 30 days out, for ``manage.py forecast_accuracy``.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from health.renewal_forecast import run_daily_renewal_forecast


class Command(BaseCommand):
    help = "Learn each band's renewal rate from past renewals and churns (run daily); keep it as a snapshot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--today", type=dt.date.fromisoformat, help="YYYY-MM-DD; default: today")
        parser.add_argument("--lookback-days", type=int, default=365)
        parser.add_argument(
            "--lead-days", type=int, default=90, help="The band this many days before counts."
        )
        parser.add_argument("--min-outcomes", type=int, default=20, help="Fewer in a band: keep its default.")

    def handle(
        self, *args, today: dt.date | None, lookback_days: int, lead_days: int, min_outcomes: int, **o
    ):
        snapshot, kept = run_daily_renewal_forecast(
            today=today or timezone.now().date(),
            lookback_days=lookback_days,
            lead_days=lead_days,
            min_outcomes=min_outcomes,
        )
        self.stdout.write(self.style.SUCCESS(f"{snapshot}:"))
        for band, row in snapshot.bands.items():
            rate = "default (too few)" if row["rate"] is None else f"{row['rate']:.1%}"
            self.stdout.write(
                f"  {band:<9} renewals {row['renewals']:>5}  churns {row['churns']:>5}  rate {rate}"
            )
        self.stdout.write(f"Kept {kept} new renewal forecast(s) for grading later.")
