"""``manage.py suggest_weights SCORECARD_ID --fit-as-of DATE --eval-as-of DATE ...``: weights as a draft."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from health.models import Scorecard
from health.suggestions import suggest_weights, validate_suggestion


class Command(BaseCommand):
    help = "Fit the scorecard's weights on a past date, save them as a new draft, and show both AUCs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scorecard_id", type=int)
        parser.add_argument(
            "--fit-as-of", required=True, help="YYYY-MM-DD: the date the weights are fitted on."
        )
        parser.add_argument("--eval-as-of", required=True, help="YYYY-MM-DD: a later date to evaluate on.")
        parser.add_argument("--outcome", default="churned", help="churned, renewed, or an event name")
        parser.add_argument("--horizon-days", type=int)
        parser.add_argument("--within-days", type=int, help="For an event outcome: the window.")

    def handle(self, *args, scorecard_id: int, outcome: str, **options) -> None:
        data = {"fit_as_of": options["fit_as_of"], "eval_as_of": options["eval_as_of"], "outcome": outcome}
        if outcome not in ("churned", "renewed"):
            data["outcome"] = {"event": outcome, "within_days": options["within_days"]}
        if options["horizon_days"] is not None:
            data["horizon_days"] = options["horizon_days"]
        scorecard = Scorecard.objects.prefetch_related("measures").filter(pk=scorecard_id).first()
        if scorecard is None:
            raise CommandError(f"No scorecard {scorecard_id}.")
        try:
            fit_as_of, eval_as_of, request = validate_suggestion(data, today=timezone.now().date())
            suggestion = suggest_weights(
                actor=None,
                scorecard=scorecard,
                fit_as_of=fit_as_of,
                eval_as_of=eval_as_of,
                outcome=request.outcome,
                horizon_days=request.horizon_days,
                now=timezone.now(),
            )
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from error
        draft = suggestion.scorecard
        self.stdout.write(self.style.SUCCESS(f"Draft scorecard {draft.pk} ({draft}) created."))
        for measure in draft.measures.all():
            self.stdout.write(f"  {measure.key:<24} weight {measure.weight}")
        for key in suggestion.dropped:
            self.stdout.write(f"  {key:<24} left out (does not predict the outcome)")
        self.stdout.write(
            f"  fit on {fit_as_of}: {suggestion.fit_accounts} accounts, AUC {suggestion.fit_auc}"
        )
        base, suggested = suggestion.base_result.auc, suggestion.suggested_result.auc
        self.stdout.write(f"  on {eval_as_of}: AUC {base} now, {suggested} suggested")
