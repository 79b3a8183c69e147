from django.core.management.base import BaseCommand

from playbooks.schedules import SCHEDULES, install_schedules


class Command(BaseCommand):
    help = "Install the beat schedule into django-celery-beat (idempotent; keeps admin edits)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Overwrite admin edits with the defaults.")

    def handle(self, *args, reset=False, **options):
        installed = install_schedules(reset=reset)
        for schedule in SCHEDULES:
            state = "installed" if schedule.name in installed else "already there"
            self.stdout.write(
                f"  {schedule.name:<34} {schedule.minute} {schedule.hour} {schedule.day_of_week}  {state}"
            )
