"""``manage.py import_config FILE``: load scorecards from JSON, validated exactly as the API does."""

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from health.scorecards import import_scorecards


class Command(BaseCommand):
    help = (
        "Load scorecards from JSON (as export_config writes it). Each one that differs from its "
        "segment's active version becomes a new version and is published (unless --draft). "
        "Nothing is stored if any scorecard is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="JSON file, or - for standard input.")
        parser.add_argument("--draft", action="store_true", help="Leave the new versions as drafts.")

    def handle(self, *args, file: str, draft: bool, **options) -> None:
        try:
            if file == "-":
                data = json.load(sys.stdin)
            else:
                with open(file, encoding="utf-8") as handle:
                    data = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"{file}: {exc}") from None
        try:
            result = import_scorecards(actor=None, data=data, now=timezone.now(), publish=not draft)
        except ValidationError as exc:
            lines = [f"  {field}: {'; '.join(messages)}" for field, messages in exc.message_dict.items()]
            raise CommandError("Invalid configuration; nothing imported:\n" + "\n".join(lines)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.created} scorecard(s) created, {result.published} published, "
                f"{result.unchanged} unchanged."
            )
        )
