import json

from django.core.management.base import BaseCommand

from playbooks.pipeline import run_pipeline


class Command(BaseCommand):
    help = "Run the pipeline now, in this process: journeys → health → playbooks → delivery."

    def add_arguments(self, parser):
        parser.add_argument(
            "--changed-only",
            action="store_true",
            help="Rescore only the accounts whose inputs changed since the previous recompute.",
        )

    def handle(self, *args, changed_only: bool = False, **options):
        self.stdout.write(json.dumps(run_pipeline(full=not changed_only), indent=2, default=str))
