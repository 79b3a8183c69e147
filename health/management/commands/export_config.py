"""``manage.py export_config``: write the scorecards as JSON, to keep the configuration in git."""

import json

from django.core.management.base import BaseCommand, CommandParser

from health.scorecards import export_scorecards


class Command(BaseCommand):
    help = "Write the active scorecards (or every version with --all) as JSON that import_config reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument(
            "--all",
            dest="include_all",
            action="store_true",
            help="Every version, drafts and retired ones too.",
        )

    def handle(self, *args, output: str | None, include_all: bool, **options) -> None:
        text = json.dumps(export_scorecards(include_all=include_all), indent=2, sort_keys=True) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
            self.stderr.write(self.style.SUCCESS(f"Wrote {output}."))
        else:
            self.stdout.write(text, ending="")
