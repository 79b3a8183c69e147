from django.core.management.base import BaseCommand
from django.utils import timezone

from journeys.evaluation import run_evaluation_step


class Command(BaseCommand):
    help = "Place accounts in their journey, complete and mark milestones, move stages (safe to run twice)."

    def handle(self, *args, **options):
        changes = run_evaluation_step(now=timezone.now())
        if changes is None:
            self.stdout.write(self.style.WARNING("Another journeys evaluation is running; nothing done."))
            return
        counts = changes.counts()
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['stages_entered']} stage changes, {counts['milestones_completed']} milestones "
                f"completed, {counts['milestones_overdue']} became overdue."
            )
        )
