import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from accounts.rollups import rebuild_daily_rollups


class Command(BaseCommand):
    help = "Rebuild the daily event rollup from raw events (repairs; safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="First UTC day to rebuild (YYYY-MM-DD); default: oldest event.")

    def handle(self, *args, since=None, **options):
        try:
            first_day = dt.date.fromisoformat(since) if since else None
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from None
        written = rebuild_daily_rollups(since=first_day)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {written} daily rollup rows."))
