"""``manage.py recompute_health``: score every active account now (the pipeline's health step)."""

from django.core.management.base import BaseCommand, CommandParser

from health.scoring import UNSCORED, run_recompute_step


class Command(BaseCommand):
    help = "Recompute the health score and band of every active account, keeping the history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing but errors.")

    def handle(self, *args, quiet: bool, **options) -> None:
        changes = run_recompute_step()
        if changes is None:
            self.stderr.write("Another health recompute is running; nothing done.")
            return
        if quiet:
            return
        self.stdout.write(self.style.SUCCESS(f"Scored {changes.accounts} accounts."))
        for band in ("green", "yellow", "red", UNSCORED):
            self.stdout.write(f"  {band:<9} {changes.bands.get(band, 0)}")
        self.stdout.write(f"  band changes: {len(changes.band_changes)}")
