"""``manage.py backtest SCORECARD_ID --as-of DATE --outcome churned --horizon-days 180``: the table."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from health.backtest import BacktestResult, backtest, compare_backtests, validate_backtest
from health.models import Scorecard


def _scorecard(pk: int) -> Scorecard:
    scorecard = Scorecard.objects.prefetch_related("measures").filter(pk=pk).first()
    if scorecard is None:
        raise CommandError(f"No scorecard {pk}.")
    return scorecard


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


class Command(BaseCommand):
    help = "Backtest a scorecard: its scores as of a past date against what happened after it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scorecard_id", type=int)
        parser.add_argument("--as-of", required=True, help="YYYY-MM-DD")
        parser.add_argument(
            "--outcome", default="churned", help="churned, renewed, or an event name (with --within-days)"
        )
        parser.add_argument("--horizon-days", type=int, help="The window after the date.")
        parser.add_argument("--within-days", type=int, help="For an event outcome: the window.")
        parser.add_argument("--compare", type=int, help="A second scorecard's id, backtested alongside.")
        parser.add_argument("--json", action="store_true", help="Print the API's JSON instead of a table.")

    def handle(self, *args, scorecard_id: int, as_of: str, outcome: str, **options) -> None:
        data = {"as_of": as_of, "outcome": outcome}
        if outcome not in ("churned", "renewed"):
            data["outcome"] = {"event": outcome, "within_days": options["within_days"]}
        if options["horizon_days"] is not None:
            data["horizon_days"] = options["horizon_days"]
        try:
            request = validate_backtest(data, today=timezone.now().date())
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from error
        scorecard = _scorecard(scorecard_id)
        args = {"as_of": request.as_of, "outcome": request.outcome, "horizon_days": request.horizon_days}
        results = (
            list(compare_backtests(scorecard=scorecard, other=_scorecard(options["compare"]), **args))
            if options["compare"]
            else [backtest(scorecard=scorecard, **args)]
        )
        if options["json"]:
            self.stdout.write(json.dumps([r.as_json() for r in results], indent=2))
            return
        for result in results:
            self._table(result)

    def _table(self, result: BacktestResult) -> None:
        write = self.stdout.write
        outcome = json.dumps(result.outcome.as_json())
        write(f"Scorecard {result.scorecard_id} as of {result.as_of}, outcome {outcome}")
        write(f"  within {result.horizon_days} days")
        auc = "-" if result.auc is None else f"{result.auc:.3f}"
        write(f"  accounts {result.accounts}, positives {result.positives}, AUC {auc}")
        write("  left out: " + ", ".join(f"{k} {v}" for k, v in result.excluded.items()))
        write(f"  {'band':<8}{'accounts':>10}{'rate':>9}")
        for band in result.bands:
            write(f"  {band.band:<8}{band.accounts:>10}{_pct(band.outcome_rate):>9}")
        write(f"  {'decile':<8}{'scores':>13}{'accounts':>10}{'rate':>9}{'lift':>7}")
        for d in result.deciles:
            lift = "-" if d.lift is None else f"{d.lift:.2f}"
            scores = f"{d.min_score:g}-{d.max_score:g}"
            write(f"  {d.decile:<8}{scores:>13}{d.accounts:>10}{_pct(d.outcome_rate):>9}{lift:>7}")
        write("")
