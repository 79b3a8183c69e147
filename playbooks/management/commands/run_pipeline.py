import json

from django.core.management.base import BaseCommand

from playbooks.pipeline import run_pipeline


class Command(BaseCommand):
    help = "Run the pipeline now, in this process: journeys → health → playbooks → delivery."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(run_pipeline(), indent=2, default=str))
