from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.governance import MIN_RETENTION_DAYS, prune_events


class Command(BaseCommand):
    help = (
        "Retention: delete raw events older than N days; the daily rollups (and so the health history "
        "and charts) are kept. Audited. Choose N above the longest metric window of your scorecards."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days", type=int, required=True, help=f"at least {MIN_RETENTION_DAYS}"
        )

    def handle(self, *args, older_than_days: int, **options):
        try:
            deleted = prune_events(older_than_days=older_than_days, now=timezone.now())
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Deleted {deleted} raw events older than {older_than_days} days; rollups kept.")
