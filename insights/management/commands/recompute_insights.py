from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.steps import recorded
from insights.recompute import STEP_LOCK, run_insights_step


class Command(BaseCommand):
    help = "Compute every account's CLV, RFM segment and lifecycle now (safe to run twice)."

    def handle(self, *args, **options):
        with recorded(STEP_LOCK) as run:
            result = run_insights_step(now=timezone.now())
            run.done(result.counts() if result is not None else None)
        if result is None:
            self.stdout.write(self.style.WARNING("Another insights run is in progress; nothing done."))
            return
        counts = result.counts()
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['accounts']} accounts, {counts['buyers']} with purchases, "
                f"{counts['segment_changes']} RFM segment changes."
            )
        )
