"""``manage.py forecast_accuracy``: how close the renewal forecasts kept 90 and 30 days before came."""

from django.core.management.base import BaseCommand

from health.renewal_forecast import forecast_accuracy


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


class Command(BaseCommand):
    help = "Compare each kept renewal forecast with what happened, per lead time and band."

    def handle(self, *args, **options) -> None:
        rows = forecast_accuracy()
        if not rows:
            self.stdout.write(
                "No renewal forecasts kept yet (manage.py learn_renewal_rates keeps them daily)."
            )
            return
        header = f"{'lead':>5} {'band':<9}{'graded':>7}{'pending':>8}{'forecast':>10}{'actual':>8}"
        self.stdout.write(header + f"{'forecast ARR':>15}{'renewed ARR':>15}{'error':>13}")
        for r in rows:
            self.stdout.write(
                f"{r.lead:>5} {r.band:<9}{r.graded:>7}{r.pending:>8}{_pct(r.forecast_rate):>10}"
                f"{_pct(r.actual_rate):>8}{r.forecast_arr:>15}{r.renewed_arr:>15}{r.error_arr:>13}"
            )
