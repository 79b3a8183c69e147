"""``manage.py recompute_health``: score every active account now (the pipeline's health step)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from health.scoring import UNSCORED, backfill_history, run_recompute_step


class Command(BaseCommand):
    help = "Recompute the health score and band of every active account, keeping the history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing but errors.")
        parser.add_argument(
            "--backfill-days",
            type=int,
            default=0,
            help="First score the past N days (as of each date, every --every-days), where not done yet.",
        )
        parser.add_argument("--every-days", type=int, default=7)

    def handle(self, *args, quiet: bool, backfill_days: int, every_days: int, **options) -> None:
        if backfill_days > 0:
            if every_days < 1:
                raise CommandError("--every-days must be at least 1")
            dates = backfill_history(until=timezone.now(), days=backfill_days, every_days=every_days)
            if not quiet:
                self.stdout.write(f"Backfilled {len(dates)} past date(s) of history.")
        changes = run_recompute_step()
        if changes is None:
            self.stderr.write("Another health recompute is running; nothing done.")
            return
        if quiet:
            return
        self.stdout.write(self.style.SUCCESS(f"Scored {changes.accounts} accounts."))
        for band in ("green", "yellow", "red", UNSCORED):
            self.stdout.write(f"  {band:<9} {changes.bands.get(band, 0)}")
        self.stdout.write(f"  band changes: {len(changes.band_changes)}")
