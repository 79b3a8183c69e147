"""`manage.py import_csv {accounts|events|tickets|surveys} FILE`: a CSV file, all or nothing."""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.csv_import import KINDS, ImportRefused, import_csv


class Command(BaseCommand):
    help = (
        "Import a UTF-8 CSV file (header row = the API's JSON field names; empty cells mean "
        "missing) in one transaction. Any bad row is reported by line and nothing is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=list(KINDS), help="What the file holds.")
        parser.add_argument("file", help="Path to the CSV file, or - for standard input.")
        parser.add_argument(
            "--no-progress", action="store_true", help="Hide the progress bar (hidden anyway off a terminal)."
        )

    def handle(self, *args, kind: str, file: str, no_progress: bool, **options) -> None:
        source = sys.stdin.buffer if file == "-" else file
        name = "standard input" if file == "-" else file
        try:
            summary = import_csv(kind=kind, path_or_file=source, progress=not no_progress)
        except ImportRefused as exc:
            raise CommandError(exc.report(name)) from None
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror or exc}") from None
        if summary.ignored_columns:
            self.stderr.write(f"Ignored unknown column(s): {', '.join(summary.ignored_columns)}")
        self.stdout.write(self.style.SUCCESS(str(summary)))
